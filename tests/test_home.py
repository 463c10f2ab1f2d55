"""`GET /` is a small HTML page for a newcomer, not a JSON 404 (issue 17)."""

from fastapi.testclient import TestClient


def test_home_page_links_the_three_doors(client: TestClient) -> None:
    response = client.get("/")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    for link in ['href="/docs"', 'href="/review"', "/v1/invitations", "make run"]:
        assert link in response.text
