"""Times as the emulator shows them and as it compares them agree to the microsecond: a client that copies a
recovery point's time into a $filter window gets that point back (the CLI and our module do exactly that)."""

import random

from dpemulator.util import iso, micros, parse_time


def test_a_shown_time_compares_equal_to_its_record():
    rng = random.Random(20261129)
    base = 1764404286.0
    disagreements_of_the_float_product = 0
    for _ in range(200_000):
        t = base + rng.random() * 86400 * 365
        shown = parse_time(iso(t))  # what a client sends back
        assert micros(shown) == micros(t), (t, iso(t))
        disagreements_of_the_float_product += int(round(t * 1e6)) != micros(t)
    # The comparison used before (round(t * 1e6)) disagrees with the shown time for some of these times: this is
    # the case the test guards (a point left out of a window that starts at its own time).
    assert disagreements_of_the_float_product > 0
