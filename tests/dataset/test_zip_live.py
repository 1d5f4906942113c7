"""Zip uploads on the real server (gevent): a bomb is refused by field; a big legitimate zip is unpacked off the
event loop, so other requests keep being answered meanwhile."""

import os
import threading

import requests

from tests.support.forms import dataset_form
from tests.support.waiting import LONG_S, SHORT_S, wait_until
from tests.support.zips import compressible_chunk, zeros_zip

FORM = dataset_form(None, dataset_name="zipped", resize_width="16", resize_height="16")


def job_folders(server) -> list[str]:
    return [e for e in os.listdir(server.jobs_dir) if e[:1].isdigit()]


def test_a_zip_bomb_is_refused_by_field_on_the_real_server(live_server):
    session = live_server.sign_in()
    bomb = zeros_zip([("shapes/a/big.png", 3_000_000_000), ("shapes/b/1.png", 10)])  # 3 GB in about 3 MB
    assert len(bomb) < 4_000_000
    r = session.post(
        live_server.url + "/datasets/images/classification/json",
        data=FORM,
        files={"folder_train_zip": ("bomb.zip", bomb, "application/zip")},
        timeout=LONG_S,
    )
    assert r.status_code == 400, r.text
    message = r.json()["errors"]["folder_train_zip"][0]
    assert message.startswith("bomb.zip: zip entry 'shapes/a/big.png' would unpack 3,000,000,000 bytes")
    assert job_folders(live_server) == []
    assert session.get(live_server.url + "/index/json", timeout=SHORT_S).status_code == 200


def test_other_requests_are_answered_while_a_big_zip_unpacks(live_server):
    session = live_server.sign_in()
    # 512 MiB that deflates about 44:1 (under the ratio limit): seconds of unpacking. All in one class folder,
    # so once unpacked the form is refused (one class) and the folder removed: nothing else runs.
    payload = zeros_zip([(f"shapes/only/{i}.bmp", 64 << 20) for i in range(8)], compressible_chunk())
    answer: dict = {}

    def upload() -> None:
        answer["response"] = session.post(
            live_server.url + "/datasets/images/classification/json",
            data=FORM,
            files={"folder_train_zip": ("big.zip", payload, "application/zip")},
            timeout=LONG_S,
        )

    uploader = threading.Thread(target=upload)
    uploader.start()

    def unpacking() -> str | None:
        assert uploader.is_alive(), f"the upload was answered before its unpacking was seen: {answer}"
        for folder in job_folders(live_server):
            candidate = os.path.join(live_server.jobs_dir, folder, "upload", "train", "shapes", "only")
            if os.path.isdir(candidate) and os.listdir(candidate):
                return candidate
        return None

    folder = wait_until(unpacking, LONG_S, "the unpacking", interval=0.01)
    other = requests.Session()
    index = other.get(live_server.url + "/index/json", timeout=SHORT_S)
    # Answered while the upload's own request is still unanswered, i.e. while its zip is being unpacked.
    still_unpacking = uploader.is_alive() and os.path.isdir(folder)
    assert index.status_code == 200 and "version" in index.json()
    assert still_unpacking, "the index answered only once the zip was unpacked"
    uploader.join(LONG_S)
    r = answer["response"]
    assert r.status_code == 400 and "1 class folder" in r.json()["errors"]["folder_train_zip"][0]
    assert job_folders(live_server) == []
