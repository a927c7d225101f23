"""Who walks in the scene: body size, clothing colours and path of each person.

Shirt colours are spread around the hue circle so every person is told apart by
clothing; trousers, skin and hair come from small realistic palettes.

Example:
    >>> import numpy as np
    >>> from spoton_inference.scenes.config import SceneConfig
    >>> people = sample_people(np.random.default_rng(0), SceneConfig(n_people=3))
    >>> [person.id for person in people]
    [1, 2, 3]
    >>> len({person.look.shirt for person in people})
    3
"""

from __future__ import annotations

import colorsys
from dataclasses import dataclass

import numpy as np

from spoton_inference.scenes.config import SceneConfig
from spoton_inference.scenes.motion import Track, simulate_walk

Colour = tuple[int, int, int]
"""A BGR colour, as OpenCV draws."""

TROUSERS: tuple[Colour, ...] = (
    (120, 70, 40),  # denim
    (40, 40, 45),  # black
    (95, 95, 100),  # grey
    (110, 150, 170),  # khaki
    (40, 60, 90),  # brown
    (70, 45, 30),  # navy
)
SKIN: tuple[Colour, ...] = ((150, 180, 225), (120, 150, 200), (90, 120, 170), (60, 85, 125), (45, 60, 95))
# Mostly dark hair: in trials the detector found dark-haired figures more often.
HAIR: tuple[Colour, ...] = ((25, 25, 30), (30, 40, 60), (20, 30, 45), (35, 60, 95))
#: Hue band (fractions of the colour circle) kept out of shirt colours.
SKIN_HUES = (0.03, 0.12)
SHOES: tuple[Colour, ...] = ((25, 25, 25), (60, 60, 60), (210, 210, 210), (30, 50, 80))


@dataclass(frozen=True)
class Look:
    """How a person is dressed; colours are BGR.

    Attributes:
        shirt: Upper-body (and sleeve) colour.
        trousers: Leg colour.
        skin: Face and hands.
        hair: Hair colour.
        shoes: Shoe colour.
        stripes: Whether the shirt has horizontal stripes (texture, not identity).
        long_sleeves: Whether the forearms are covered by the shirt.
    """

    shirt: Colour
    trousers: Colour
    skin: Colour
    hair: Colour
    shoes: Colour
    stripes: bool
    long_sleeves: bool


@dataclass(frozen=True)
class Person:
    """One walker: global id (same in every camera), body, clothes and path.

    Attributes:
        id: Global person id, 1-based.
        height_m: Body height in metres.
        girth: Width scale of the body (1.0 = average build).
        look: Clothing and skin colours.
        track: Per-frame position, heading and gait.
    """

    id: int
    height_m: float
    girth: float
    look: Look
    track: Track


def _shirt_colours(rng: np.random.Generator, count: int) -> list[Colour]:
    """``count`` saturated colours with evenly spaced hues, in random order.

    Hues skip the skin-like orange-tan band: in trials the detector missed
    people dressed in it far more often (a torso the colour of skin confuses it).
    """
    offset = rng.random()
    colours = []
    for index in range(count):
        hue = (SKIN_HUES[1] + ((offset + index / count) % 1.0) * (1.0 - SKIN_HUES[1] + SKIN_HUES[0])) % 1.0
        saturation = rng.uniform(0.55, 0.9)
        value = rng.uniform(0.55, 0.95)
        red, green, blue = colorsys.hsv_to_rgb(hue, saturation, value)
        colours.append((round(blue * 255), round(green * 255), round(red * 255)))
    return [colours[index] for index in rng.permutation(count)]


def _pick(rng: np.random.Generator, palette: tuple[Colour, ...]) -> Colour:
    return palette[int(rng.integers(len(palette)))]


def sample_people(rng: np.random.Generator, config: SceneConfig) -> list[Person]:
    """Draw ``config.n_people`` people with paths over ``config.total_frames`` frames."""
    shirts = _shirt_colours(rng, config.n_people)
    people = []
    for index in range(config.n_people):
        height = float(rng.uniform(*config.person_height_m))
        look = Look(
            shirt=shirts[index],
            trousers=_pick(rng, TROUSERS),
            skin=_pick(rng, SKIN),
            hair=_pick(rng, HAIR),
            shoes=_pick(rng, SHOES),
            stripes=bool(rng.random() < 0.3),
            long_sleeves=bool(rng.random() < 0.5),
        )
        track = simulate_walk(rng, config, config.total_frames, height_m=height)
        people.append(
            Person(id=index + 1, height_m=height, girth=float(rng.uniform(0.9, 1.15)), look=look, track=track)
        )
    return people
