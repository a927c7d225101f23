"""Who walks in the scene: body size, clothing colours and path of each person.

Shirt colours are spread around the hue circle so every person is told apart by
clothing; trousers, skin and hair come from small realistic palettes.

``similar_clothes`` (``s``) moves everyone's clothes a fraction ``s`` of the way
towards one shared outfit: the first sampled shirt colour (hue position,
saturation, value) and the first person's trousers; stripes get rarer by the same
factor. Skin, hair, shoes, sleeves and build still differ, as in a team in
uniform. Each person's own colours are drawn as for distinct clothes, so the
random stream does not depend on ``s``.

Example:
    >>> import numpy as np
    >>> from spoton_inference.scenes.config import SceneConfig
    >>> people = sample_people(np.random.default_rng(0), SceneConfig(n_people=3))
    >>> [person.id for person in people]
    [1, 2, 3]
    >>> len({person.look.shirt for person in people})
    3
    >>> alike = sample_people(np.random.default_rng(0), SceneConfig(n_people=3, similar_clothes=1.0))
    >>> len({person.look.shirt for person in alike}), len({person.look.trousers for person in alike})
    (1, 1)
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


def _towards(own: np.ndarray, shared: np.ndarray, similarity: float) -> np.ndarray:
    """``own`` moved ``similarity`` of the way to ``shared`` (exactly ``own`` at 0)."""
    return own + similarity * (shared - own)


def _shirt_colours(rng: np.random.Generator, count: int, similarity: float) -> list[Colour]:
    """``count`` saturated colours with evenly spaced hues, in random order.

    Hues skip the skin-like orange-tan band: in trials the detector missed
    people dressed in it far more often (a torso the colour of skin confuses it).
    ``similarity`` pulls every colour towards the first one; hues move along the
    allowed band, not around the circle, so they never pass through the skin band.
    """
    offset = rng.random()
    # Position on the allowed hue band, saturation and value of each colour.
    hsv = np.array(
        [((offset + index / count) % 1.0, rng.uniform(0.55, 0.9), rng.uniform(0.55, 0.95)) for index in range(count)]
    )
    colours = []
    # hsv[:1], not hsv[0]: an empty crowd is allowed.
    for position, saturation, value in _towards(hsv, hsv[:1], similarity).tolist():
        hue = (SKIN_HUES[1] + position * (1.0 - SKIN_HUES[1] + SKIN_HUES[0])) % 1.0
        red, green, blue = colorsys.hsv_to_rgb(hue, saturation, value)
        colours.append((round(blue * 255), round(green * 255), round(red * 255)))
    return [colours[index] for index in rng.permutation(count)]


def _pick(rng: np.random.Generator, palette: tuple[Colour, ...]) -> Colour:
    return palette[int(rng.integers(len(palette)))]


def _colour(channels: np.ndarray) -> Colour:
    blue, green, red = (round(float(channel)) for channel in channels)
    return blue, green, red


def sample_people(rng: np.random.Generator, config: SceneConfig) -> list[Person]:
    """Draw ``config.n_people`` people with paths over ``config.total_frames`` frames."""
    similarity = config.similar_clothes
    shirts = _shirt_colours(rng, config.n_people, similarity)
    people: list[Person] = []
    for index in range(config.n_people):
        height = float(rng.uniform(*config.person_height_m))
        trousers = np.array(_pick(rng, TROUSERS), float)
        shared_trousers = np.array(people[0].look.trousers, float) if people else trousers
        look = Look(
            shirt=shirts[index],
            trousers=_colour(_towards(trousers, shared_trousers, similarity)),
            skin=_pick(rng, SKIN),
            hair=_pick(rng, HAIR),
            shoes=_pick(rng, SHOES),
            stripes=bool(rng.random() < 0.3 * (1.0 - similarity)),
            long_sleeves=bool(rng.random() < 0.5),
        )
        track = simulate_walk(rng, config, config.total_frames, height_m=height, others=[p.track for p in people])
        people.append(
            Person(id=index + 1, height_m=height, girth=float(rng.uniform(0.9, 1.15)), look=look, track=track)
        )
    return people
