"""What every wrapper of a native handle does with ``with`` and at collection."""

from typing import TypeVar

_T = TypeVar("_T", bound="Closing")


class Closing:
    """A wrapper whose ``close()`` releases a native handle: ``with`` closes it on
    the way out, and so does garbage collection (where an error, say at interpreter
    shutdown, is swallowed). Subclasses define ``close``; closing twice must be
    harmless."""

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self: _T) -> _T:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass
