"""The front page: what the service is and its three doors (API, physician review, form)."""
