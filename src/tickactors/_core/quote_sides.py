"""Which best bid and offer a live view shows after a quote that may carry one side only.

A Tradovate ``Quote`` carries the entries the venue updated; a side it left out is None.
A view that keeps the last value of such a side can end up showing a bid above the offer
(a crossed market) that the venue never showed: the kept side is older than the one that
moved through it. So a side the venue did not send keeps its last value only while that
does not cross the side it did send; otherwise it is shown blank, and the quote reads as
the venue sent it. A quote that carries both sides is shown as it came, crossed or not:
that is the venue's word, not the view's making.
"""

from __future__ import annotations

from decimal import Decimal

__all__ = ["shown_sides"]


def shown_sides(
    shown_bid: Decimal | None,
    shown_offer: Decimal | None,
    bid: Decimal | None,
    offer: Decimal | None,
) -> tuple[Decimal | None, Decimal | None]:
    """The (bid, offer) to show after a quote carrying ``bid``/``offer`` (None: not sent),
    when ``shown_bid``/``shown_offer`` were shown before."""
    if bid is not None and offer is not None:
        return bid, offer
    if bid is None and offer is None:
        return shown_bid, shown_offer
    if bid is not None:  # the offer was not sent: keep it while it is not below the bid
        return bid, shown_offer if shown_offer is not None and shown_offer >= bid else None
    assert offer is not None  # the bid was not sent: keep it while it is not above the offer
    return shown_bid if shown_bid is not None and shown_bid <= offer else None, offer
