"""Which controls of which pages a browser test used, and which it left alone.

A `ControlLedger` attached to a Playwright context notes, on every page that loads, the controls a person can use
there (buttons, button-looking links, selects, checkboxes, radios, file inputs, sliders, summaries), and every control
the test clicked, changed or submitted with. `unused()` names the controls of each kind of page that nothing
touched: the every-control suite fails on them, so a control added without a test that uses it fails the suite.
Pages are grouped by their path with job ids and epochs taken out ("/models/<id>"); a control by its id, else its
name, else its text.
"""

from __future__ import annotations

import re
from collections import defaultdict

JOB_ID = re.compile(r"\d{8}-\d{6}-[0-9a-f]{4}")
RESULT_ID = re.compile(r"\b(one|many|top)-[0-9a-f]{8,}")

# Runs in every page of the context before its own scripts: reports the page's controls once it has loaded
# (and after each live-region refresh) and every use of one.
SCRIPT = r"""
(() => {
  const SELECTOR = 'button, a.btn, input[type=submit], input[type=checkbox], input[type=radio], input[type=file], '
    + 'input[type=range], select, summary, [role=tab]';
  const keyOf = (el) => {
    const text = (el.getAttribute('aria-label') || el.textContent || el.value || '').trim().replace(/\s+/g, ' ');
    if (el.id) return '#' + el.id;
    if (el.name && !['checkbox', 'radio'].includes(el.type)) return el.tagName.toLowerCase() + '[name=' + el.name + ']';
    if (el.name) return el.tagName.toLowerCase() + '[name=' + el.name + '][value=' + el.value + ']';
    return el.tagName.toLowerCase() + ':' + text.slice(0, 40);
  };
  // A radio or checkbox styled as a button is used through its label.
  const controlOf = (target) => {
    const label = target.closest && target.closest('label[for]');
    if (label) { const input = document.getElementById(label.htmlFor); if (input) return input; }
    return target.closest ? target.closest(SELECTOR) : null;
  };
  const visible = (el) => !!(el.offsetWidth || el.offsetHeight || el.getClientRects().length)
    || (el.classList.contains('btn-check') && document.querySelector('label[for="' + el.id + '"]'));
  // Only a page that has finished loading: one still parsing (a settle() right after a click that navigates) may
  // be laid out before its stylesheets apply, when the collapsed navigation's "Menu" button shows at any width.
  const inventory = () => {
    if (!window.__digitsControls || document.readyState !== 'complete') return;
    const keys = [...document.querySelectorAll(SELECTOR)].filter((el) => !el.disabled && visible(el)).map(keyOf);
    window.__digitsControls(location.pathname, [...new Set(keys)]);
  };
  const used = (el) => { if (el && window.__digitsUsed) window.__digitsUsed(location.pathname, keyOf(el)); };
  window.__digitsInventory = inventory;
  window.addEventListener('load', inventory);
  document.addEventListener('digits:regions-refreshed', inventory);
  document.addEventListener('click', (e) => used(controlOf(e.target)), true);
  document.addEventListener('change', (e) => used(controlOf(e.target)), true);
  document.addEventListener('submit', (e) => used(e.submitter || e.target.querySelector('[type=submit]')), true);
  document.addEventListener('toggle', (e) => used(e.target.querySelector(':scope > summary')), true);
})();
"""


def page_kind(path: str) -> str:
    return RESULT_ID.sub(r"\1-<run>", JOB_ID.sub("<id>", path))


class ControlLedger:
    def __init__(self, context):
        self.seen: dict[str, set[str]] = defaultdict(set)
        self.used: dict[str, set[str]] = defaultdict(set)
        context.expose_function("__digitsControls", self._controls)
        context.expose_function("__digitsUsed", self._used)
        context.add_init_script(SCRIPT)

    def _controls(self, path: str, keys: list[str]) -> None:
        self.seen[page_kind(path)].update(keys)

    def _used(self, path: str, key: str) -> None:
        self.used[page_kind(path)].add(key)

    def note_inventory(self, page) -> None:
        """Take stock of a page's controls now (after something on it appeared without a load)."""
        page.evaluate("() => window.__digitsInventory && window.__digitsInventory()")

    def unused(self, ignore: dict[str, set[str]] | None = None) -> dict[str, list[str]]:
        ignore = ignore or {}
        out = {}
        for kind, keys in self.seen.items():
            left = keys - self.used.get(kind, set()) - ignore.get(kind, set()) - ignore.get("*", set())
            if left:
                out[kind] = sorted(left)
        return out
