"""The admin's feed upload: a preview that writes nothing, then the import; another depot cannot be picked."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from fleet.models import Block
from tests import factories as f
from tests.timetable.feeds import DEPOT_LAT, DEPOT_LON, write_feed
from timetable.models import FeedImport

pytestmark = pytest.mark.django_db
UPLOAD = "/admin/timetable/feedimport/upload/"


@pytest.fixture
def manager(two_depots):
    from fleet import services as fleet_services

    fleet_services.depot_update(depot=two_depots["depot_a"], data={"latitude": DEPOT_LAT, "longitude": DEPOT_LON})
    return two_depots


def upload(client, feed, depot, **extra):
    body = {"depot": depot.pk, "date_from": "2026-01-05", "date_to": "2026-01-05", **extra}
    body["feed"] = SimpleUploadedFile("feed.zip", feed.read_bytes(), content_type="application/zip")
    return client.post(UPLOAD, body)


def test_preview_then_import(manager, client, tmp_path):
    client.force_login(manager["manager_a"])
    feed = write_feed(tmp_path)
    preview = upload(client, feed, manager["depot_a"])
    assert preview.status_code == 200
    page = preview.content.decode()
    assert "Preview: nothing was written" in page and '<td id="created">4</td>' in page
    assert not Block.objects.exists() and not FeedImport.objects.exists()

    done = upload(client, feed, manager["depot_a"], confirm="on")
    assert '<td id="created">4</td>' in done.content.decode()
    assert Block.objects.filter(depot=manager["depot_a"]).count() == 4


def test_a_bad_feed_is_shown_on_the_form(manager, client, tmp_path):
    client.force_login(manager["manager_a"])
    response = upload(client, write_feed(tmp_path, stops_txt=None), manager["depot_a"], confirm="on")
    assert "missing file: stops.txt" in response.content.decode()
    assert not Block.objects.exists()


def test_another_depot_cannot_be_chosen(manager, client, tmp_path):
    client.force_login(manager["manager_a"])
    response = upload(client, write_feed(tmp_path), manager["depot_b"], confirm="on")
    assert "Select a valid choice" in response.content.decode()
    assert not Block.objects.exists()


def test_a_viewer_gets_no_upload_page(two_depots, client):
    viewer = f.UserFactory(username="viewer_a")
    f.MembershipFactory(user=viewer, depot=two_depots["depot_a"], role="viewer")
    client.force_login(viewer)
    assert client.get(UPLOAD).status_code == 403
