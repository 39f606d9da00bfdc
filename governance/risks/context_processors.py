from functools import cache

from governance.risks import selectors


def signoffs(request):
    """inbox_count for the sidebar's "My sign-offs" badge: a template calls it, so it is counted only when a page
    shows it (not for partials), once however often the page reads it."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    return {"inbox_count": cache(lambda: selectors.inbox_count(user))}
