"""Make the executive template's fonts from DejaVu Sans 2.37: the scripts and symbols a report
can print, everything else left out (see templates/executive/fonts/README.md).

    .venv/bin/python tools/subset_fonts.py DejaVuSans.ttf DejaVuSans-Bold.ttf

reads the original files from the given paths (Debian's fonts-dejavu-core has them under
/usr/share/fonts/truetype/dejavu/) and writes templates/executive/fonts/<same name>.

Why: without libharfbuzz-subset0, WeasyPrint subsets each embedded font with fontTools, whose
time grows with the font (6,253 glyphs in DejaVu Sans); with these 2,900-glyph files it takes
about half as long, for the same shapes, spacing and kerning of every character kept.
"""

from __future__ import annotations

import sys
from pathlib import Path

from fontTools import subset
from fontTools.ttLib import TTFont

OUT = Path(__file__).resolve().parent.parent / "templates" / "executive" / "fonts"

# Unicode blocks kept, whole: Latin (with its extensions and combining marks), Greek, Cyrillic,
# punctuation, super- and subscripts, currency, letter-like symbols, number forms, arrows,
# mathematical operators, technical symbols, enclosed numbers, box drawing, blocks, geometric
# shapes, miscellaneous symbols, dingbats, Latin ligatures and the replacement character.
BLOCKS = [
    (0x0020, 0x007E),
    (0x00A0, 0x036F),
    (0x0370, 0x03FF),
    (0x0400, 0x052F),
    (0x1E00, 0x1EFF),
    (0x2000, 0x23FF),
    (0x2460, 0x27BF),
    (0xFB00, 0xFB06),
    (0xFFFD, 0xFFFD),
]


def make(source: Path) -> Path:
    options = subset.Options(
        layout_features=["*"],  # every OpenType feature: shaping and kerning as in the original
        name_IDs=["*"],
        name_languages=["*"],
        notdef_outline=True,
        hinting=True,
        legacy_kern=True,
        glyph_names=False,
    )
    options.drop_tables += ["MATH", "FFTM"]  # math layout (not used for text), a build timestamp
    subsetter = subset.Subsetter(options)
    subsetter.populate(unicodes=[u for lo, hi in BLOCKS for u in range(lo, hi + 1)])
    font = TTFont(source)
    subsetter.subset(font)
    target = OUT / source.name
    font.save(target)
    return target


def main(paths: list[str]) -> None:
    for path in paths:
        target = make(Path(path))
        glyphs = len(TTFont(target).getGlyphOrder())
        sys.stdout.write(f"{target}: {glyphs} glyphs, {target.stat().st_size:,} bytes\n")


if __name__ == "__main__":
    main(sys.argv[1:])
