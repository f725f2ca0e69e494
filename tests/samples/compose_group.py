"""Rebuild `group.jpg` from the two public-domain/CC0 portraits beside it: `python tests/samples/compose_group.py`.

Four people at three scales (the smallest face is about 30 px, under 5 % of the short side: only the tiled
search finds it) and one mirrored, on a plain backdrop.
"""

from pathlib import Path

from PIL import Image, ImageOps

HERE = Path(__file__).resolve().parent

astronaut = Image.open(HERE / "astronaut.jpg").convert("RGB")
cameraman = Image.open(HERE / "cameraman.png").convert("RGB")
canvas = Image.new("RGB", (1500, 640), (205, 200, 190))
canvas.paste(astronaut.resize((420, 420)), (20, 200))
canvas.paste(cameraman.resize((460, 460)), (470, 150))
canvas.paste(ImageOps.mirror(astronaut).resize((300, 300)), (960, 320))
canvas.paste(astronaut.resize((150, 150)), (1300, 60))
canvas.save(HERE / "group.jpg", quality=90)
