FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
WORKDIR /app
# Chromium prints the board report to PDF (governance/dashboard/pdf.py; RAMPART_CHROMIUM=/usr/bin/chromium). Without it
# the PDF download says so and the browser's own Print still works: build with --build-arg WITH_CHROMIUM=0 to leave
# it out (about 300 MB).
ARG WITH_CHROMIUM=1
RUN if [ "$WITH_CHROMIUM" = "1" ]; then apt-get update \
    && apt-get install -y --no-install-recommends chromium fonts-dejavu-core \
    && rm -rf /var/lib/apt/lists/*; fi
COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt
COPY . .
RUN useradd --create-home rampart && mkdir -p /data && chown rampart /data
USER rampart
EXPOSE 8000
CMD ["gunicorn", "governance.wsgi:application", "--bind", "0.0.0.0:8000"]
