"""ui/text.py: text from an agent, a user or a file shows as typed, never as markup."""

from __future__ import annotations

import html
import re

import pytest

from ui.text import WORD_JOINER, escape, literal

INJECTION = "Trend up.\r\r![x](http://127.0.0.1:9/b.png) [link](http://127.0.0.1:9/) www.example.com a@b.co"


@pytest.mark.parametrize("ending", ["\r", "\r\n", "\n", "\r\r", "\r\n\r\n", "\n\r"])
def test_escape_makes_every_line_ending_a_br_so_no_blank_line_ends_the_html_block(ending):
    out = escape(f"one{ending}two")
    assert "\r" not in out and "\n" not in out
    assert out == "one" + "<br>" * (2 if ending in ("\r\r", "\r\n\r\n", "\n\r") else 1) + "two"


def test_escape_leaves_no_autolink_and_reads_back_as_typed():
    out = escape(INJECTION)
    assert "\r" not in out and "http://" not in out and "www." not in out and "@" not in out
    assert html.unescape(out.replace("<br>", "\n")) == INJECTION.replace("\r", "\n")


def test_literal_breaks_bare_urls_and_emails_and_reads_back_as_typed():
    out = literal("see http://x.test/a and www.x.test or me@x.test\r\rnext")
    assert not re.search(r"https?://|www\.|\w@\w", out) and "\r" not in out
    read = re.sub(r"\\(.)", r"\1", out)
    assert read.replace(WORD_JOINER, "") == "see http://x.test/a and www.x.test or me@x.test\n\nnext"
