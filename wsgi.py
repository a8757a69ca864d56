"""The WSGI entry point: `gunicorn wsgi:app`, `flask --app wsgi …`."""

from dotenv import load_dotenv

from app import create_app

# Settings in .env fill in what the environment does not set.
load_dotenv()

app = create_app()
