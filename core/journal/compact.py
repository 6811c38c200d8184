"""Compact storage for the bulky parts of an exchange: raw deflate with a preset dictionary.

A round's JSON and its reasoning and critique share most of their words with every other
round's (field names, constraint names, the arithmetic's wording), so each is compressed
against a dictionary of typical exchange text: a 2 KB round becomes about 100 bytes, and
decompresses to exactly the text that went in.

A blob is one byte naming its dictionary, then the deflate stream. The dictionaries live in
the database itself (the store copies `DICTIONARY` in when it creates a file), so a file
always reads back with the dictionary it was written with, whatever this module ships later.
`DICTIONARY` was cut once from house exchanges over varied worlds and presets.
"""

from __future__ import annotations

import zlib
from pathlib import Path

DICTIONARY_PATH = Path(__file__).with_name("store_dictionary.txt")
# deflate's level 6 (zlib's default), not 9: on house rounds and details, 68 us a blob, not 88, for 334 bytes, not 330
# (9 searches far longer match chains through the dictionary for a few bytes). Inflating reads any level.
_LEVEL, _RAW = 6, -15  # no zlib header or trailer
# deflate's memLevel: 8 (zlib's default) spreads the dictionary and the text over 32K hash chains, not 8K at 6: a
# round's text then walks far shorter chains, ~13% less time a blob, more than the larger state it copies
# (256 KB, not 160 KB) costs. Inflating never depends on it: every reader reads both.
_MEMORY = 8


def dictionary() -> bytes:
    """The preset dictionary a new database starts with."""
    return DICTIONARY_PATH.read_bytes()


class Packer:
    """Packs text against the newest of a database's dictionaries and unpacks blobs from any of them."""

    def __init__(self, dictionaries: dict[int, bytes]):
        self.dictionaries = dictionaries
        self.newest = max(dictionaries, default=None)  # none: a damaged file, which unpacks nothing
        # Loading a dictionary costs more than compressing a round: prime a compressor once, copy it per blob.
        self._primed = None if self.newest is None else zlib.compressobj(
            _LEVEL, zlib.DEFLATED, _RAW, _MEMORY, zdict=dictionaries[self.newest])

    def pack(self, text: str) -> bytes:
        """The text as a blob: its dictionary's id, then the deflate stream."""
        if self._primed is None:
            raise KeyError("no dictionary to pack with")
        compressor = self._primed.copy()
        return bytes([self.newest]) + compressor.compress(text.encode()) + compressor.flush()

    def unpack(self, blob: bytes) -> str:
        """The text a blob was packed from (a damaged blob raises zlib.error, KeyError, IndexError or
        UnicodeDecodeError: the store names it, see exchanges.DAMAGE)."""
        inflater = zlib.decompressobj(_RAW, zdict=self.dictionaries[blob[0]])
        return (inflater.decompress(blob[1:]) + inflater.flush()).decode()

    def unpack_line(self, blob: bytes, step: int = 512) -> str:
        """The first line of the text a blob was packed from, unpacking no further than its end."""
        inflater = zlib.decompressobj(_RAW, zdict=self.dictionaries[blob[0]])
        text, rest = b"", blob[1:]
        while b"\n" not in text and (rest or not inflater.eof):
            text += inflater.decompress(rest, step)
            rest = inflater.unconsumed_tail
            if not rest and not inflater.eof:
                text += inflater.flush()
                break
        return text.split(b"\n", 1)[0].decode()
