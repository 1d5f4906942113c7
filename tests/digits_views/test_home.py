"""DIGITS' digits/test_views.py, ported: the home page, an unknown page, the path autocompletion, and the sign-in
and sign-out every DIGITS view test begins and ends with.

ours                                       DIGITS (TestViews / BaseViewsTest)
test_sign_in_and_out_redirect              BaseViewsTest.setUpClass / tearDownClass (login, logout: 302)
test_homepage                              test_homepage
test_invalid_page                          test_invalid_page
test_autocomplete[absolute|relative]       test_autocomplete (check_autocomplete with / and ./)
"""

from __future__ import annotations

import pytest

from tests.digits_views.conftest import start_digits, stop_digits


def test_sign_in_and_out_redirect(tmp_path):
    digits = start_digits(tmp_path)  # signs in as DIGITS' tests did, asserting the 302
    r = digits.http.post("/logout")
    assert r.status_code == 302 and r.headers["Location"] == "/"
    r = digits.http.post("/login", data={"username": "digits-testsuite"})
    assert r.status_code == 302 and r.headers["Location"] == "/"
    stop_digits(digits)  # signs out, asserting the 302


def test_homepage(digits):
    r = digits.http.get("/")
    assert r.status_code == 200
    page = r.get_data(as_text=True)
    for text in ("Home", "Datasets", "Models"):
        assert text in page


def test_invalid_page(digits):
    assert digits.http.get("/foo").status_code == 404


@pytest.mark.parametrize("query", ["/", "./"], ids=["absolute", "relative"])
def test_autocomplete(digits, query):
    r = digits.http.get("/autocomplete/path", query_string={"query": query})
    assert r.status_code == 200
    assert "suggestions" in r.get_json()
