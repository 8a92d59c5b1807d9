"""Base class for request and response bodies."""

from pydantic import BaseModel, ConfigDict


class Schema(BaseModel):
    """A JSON body. Unknown fields are refused, which rules out mass assignment.

    The kernel refuses, at start-up, a route whose body model allows unknown fields.
    """

    model_config = ConfigDict(extra="forbid")
