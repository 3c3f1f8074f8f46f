# Flowforge: one image for web (gunicorn), workers and beat; docker-compose.yml picks the command.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DJANGO_SETTINGS_MODULE=automation.settings_production \
    AUTOMATION_VAR_DIR=/tmp/flowforge \
    AUTOMATION_FILES_ROOT=/app/files

WORKDIR /app
COPY requirements.txt .
RUN pip install -r requirements.txt

COPY . .
# Static files are collected with the development profile: it needs no secret and no database.
RUN DJANGO_SETTINGS_MODULE=automation.settings python manage.py collectstatic --noinput \
    && useradd --system --uid 10001 --user-group --home-dir /app --no-create-home flowforge \
    && mkdir -p /app/files /tmp/flowforge \
    && chown flowforge:flowforge /app/files /tmp/flowforge

USER flowforge
EXPOSE 8000
CMD ["gunicorn", "automation.wsgi:application", "--bind", "0.0.0.0:8000", "--workers", "4", "--timeout", "60", "--access-logfile", "-"]
