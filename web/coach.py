"""Coach endpoints (transcript checks); filled in by the coaching checker work."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("coach", __name__)
