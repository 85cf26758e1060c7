"""The API's reference pages, /docs (Swagger UI) and /redoc, served with no CDN."""
