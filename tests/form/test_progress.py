"""'Page N of M' counts the pages the patient sees: no number on two pages (issue 17)."""

import re

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from tests.form.support import FEMALE_PAGES, make_form_clinic, make_invitation


def test_every_page_has_its_own_number(client: TestClient, session: Session) -> None:
    clinic_id, _ = make_form_clinic(session)
    link = make_invitation(session, clinic_id=clinic_id)
    numbers = []
    for page, data in FEMALE_PAGES:
        html = client.get(f"{link}/q/{page}").text
        found = re.search(r'class="caption">Page (\d+) of (\d+)<', html)
        assert found is not None, page
        numbers.append(int(found.group(1)))
        assert client.post(f"{link}/q/{page}", data=data, follow_redirects=False).status_code == 303
    assert numbers == list(range(1, len(FEMALE_PAGES) + 1))
    assert "Section" not in html
