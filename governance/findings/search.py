"""The queue's text search: a word index instead of a trigram index.

A trigram GIN index on title, location and rule id wrote ~130 index entries per imported finding and cost more
than everything else in an import together (bench/README.md). Instead each finding keeps the 64-bit hashes of
the words of those three fields (`Finding.terms`, GIN-indexed: ~13 entries a finding), and a dictionary table
keeps each word once (`FindingTerm`, with its own small trigram index).

A search for q is still a case-insensitive substring match (the LIKE below stays as the exact filter); the
index narrows the rows first. Split q into word pieces the same way: if q occurs in a text, every piece of q
lies inside one word of that text, so a matching finding has, for each piece, a word that contains the piece.
The dictionary says which words contain a piece (a substring match over distinct words, not over findings).
"""
from __future__ import annotations

import hashlib
import re
import struct

from django.db import connection

WORD = re.compile(r"\w+")
MAX_WORDS_PER_PIECE = 2000  # a piece inside more words than this ("a", "1") narrows nothing: skip it
MAX_PIECES = 8
# A piece whose words are in more than this share of all findings narrows too little: the queue's sort index
# meets 50 matches sooner than the word index can list them all (measured at 1M findings: a word in 1 finding of
# 8, "sql", took 750 ms through the word index and a few ms walking the severity index).
COMMON_SHARE = 0.005


def fold(text: str) -> str:
    """Case-folded the way the exact filter compares (PostgreSQL's UPPER), one character at a time.

    Not str.lower(): it is not a character-by-character map (a final Σ lowers to ς, so "ΟΔΟΣ" would not be found
    inside "ΟΔΟΣΑ"), and substrings only survive a character-by-character map. A character whose capital is
    several characters ("ß" → "SS") stays as it is; pieces holding one do not narrow (see pieces()).
    """
    if text.isascii():
        return text.upper()
    return "".join(c if len(u := c.upper()) != 1 else u for c in text)


def words(text: str) -> list[str]:
    return WORD.findall(fold(text))


def word_hash(word: str) -> int:
    return int.from_bytes(hashlib.blake2b(word.encode("utf-8", "surrogatepass"), digest_size=8).digest(), "big",
                          signed=True)


_INT8 = 20  # PostgreSQL's type oid of the elements
_ARRAY_HEADER = struct.Struct(">iiiii")  # dimensions, has nulls, element type, length, lower bound
_EMPTY_ARRAY = struct.pack(">iii", 0, 0, _INT8)


class PackedTerms(bytes):
    """A finding's word hashes as PostgreSQL's binary int8[], which the import's COPY sends as it is (psycopg's
    own array dumper is Python code: 22 µs a finding). hashes() gives them back as ints."""

    def hashes(self) -> list[int]:
        body = memoryview(self)[_ARRAY_HEADER.size:]
        return [int.from_bytes(body[i + 4:i + 12], "big", signed=True) for i in range(0, len(body), 12)]

    @classmethod
    def pack(cls, elements) -> "PackedTerms":
        """elements: distinct 12-byte binary int8 array elements (length + value), in a stable order."""
        if not elements:
            return cls(_EMPTY_ARRAY)
        return cls(_ARRAY_HEADER.pack(1, 0, _INT8, len(elements), 1) + b"".join(elements))


def _element(h: int) -> bytes:
    return b"\x00\x00\x00\x08" + h.to_bytes(8, "big", signed=True)


class Terms:
    """Word hashes of findings, remembering the words met so far (an import meets the same few thousand words
    again and again) and the ones the dictionary has not been given yet."""

    CACHE = 200_000  # words and texts remembered; past this the caches start again (memory stays flat)

    def __init__(self):
        self._elements: dict[str, bytes] = {}  # word -> its binary array element
        self._texts: dict[str, tuple[bytes, ...]] = {}  # titles and rule ids repeat: split each text once
        self._new: dict[int, str] = {}

    def of(self, title: str, location: str, rule_id: str) -> PackedTerms:
        # an ordered dedupe (not a set): the same finding gets the same bytes in every process
        return PackedTerms.pack(dict.fromkeys(self._text(title) + self._text(rule_id) + self._text(location, False)))

    def _text(self, text: str, remember: bool = True) -> tuple[bytes, ...]:
        found = self._texts.get(text)
        if found is None:
            found = tuple(map(self._word, words(text)))
            if remember:
                if len(self._texts) > self.CACHE:
                    self._texts.clear()
                self._texts[text] = found
        return found

    def _word(self, word: str) -> bytes:
        element = self._elements.get(word)
        if element is None:
            if len(self._elements) > self.CACHE:
                self._elements.clear()
            h = word_hash(word)
            element = self._elements[word] = _element(h)
            self._new[h] = word
        return element

    def new_words(self) -> dict[int, str]:
        """The words met since the last call, by hash (for the dictionary)."""
        new, self._new = self._new, {}
        return new


def pieces(q: str) -> list[str]:
    """The words of a search, but those with a character that has no one-character capital (they may match text
    PostgreSQL capitalises differently: the exact filter alone decides for them)."""
    return [p for p in dict.fromkeys(words(q)) if p.isascii() or all(len(c.upper()) == 1 for c in p)][:MAX_PIECES]


def piece_hashes(q: str) -> list[list[int]] | None:
    """For each selective piece of q, the hashes of the words containing it. None: some piece is in no word at
    all, so nothing can match. [] : nothing to narrow by (no word characters, or only common pieces).

    One query: the dictionary's words containing each piece, with the share of findings holding each word from
    PostgreSQL's statistics of Finding.terms (its most common elements, which ANALYZE keeps)."""
    from governance.findings.models import Finding, FindingTerm

    wanted = pieces(q)
    if not wanted or connection.vendor != "postgresql":
        return []
    words_table = connection.ops.quote_name(FindingTerm._meta.db_table)
    patterns = ["%" + p.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%" for p in wanted]
    with connection.cursor() as cursor:
        cursor.execute(
            f"WITH common AS (SELECT m.hash, m.share FROM pg_stats s,"
            f" unnest(s.most_common_elems::text::bigint[], s.most_common_elem_freqs) AS m(hash, share)"
            f" WHERE s.schemaname = current_schema() AND s.tablename = %s AND s.attname = 'terms')"
            f" SELECT p.n, t.hash, coalesce(c.share, 0) FROM unnest(%s::text[]) WITH ORDINALITY AS p(pattern, n)"
            f" CROSS JOIN LATERAL (SELECT hash FROM {words_table} WHERE word LIKE p.pattern LIMIT %s) t"
            f" LEFT JOIN common c ON c.hash = t.hash",
            [Finding._meta.db_table, patterns, MAX_WORDS_PER_PIECE + 1],
        )
        found: dict[int, list[int]] = {}
        shares: dict[int, float] = {}
        for n, h, share in cursor.fetchall():
            found.setdefault(n, []).append(h)
            shares[n] = shares.get(n, 0.0) + share
    if len(found) < len(wanted):
        return None
    return [hashes for n, hashes in found.items()
            if len(hashes) <= MAX_WORDS_PER_PIECE and shares[n] <= COMMON_SHARE]
