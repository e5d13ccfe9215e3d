"""TLS contexts of daemons and clients, built from PEM files named by an option.

:mod:`ssl` is imported here, when a context is built, and nowhere at module level: it costs
milliseconds at start-up, and most daemons and clients on a lab network speak plain text.
"""

from __future__ import annotations

import errno
import sys
from pathlib import Path

# typing costs milliseconds at import; annotations are strings here, mypy reads this block.
TYPE_CHECKING = False
if TYPE_CHECKING:
    import ssl


def is_tls_error(error: BaseException) -> bool:
    """Tell whether ``error`` is an :class:`ssl.SSLError`, without importing :mod:`ssl`.

    Only code that imported :mod:`ssl` can have raised one.
    """
    ssl = sys.modules.get("ssl")
    return ssl is not None and isinstance(error, ssl.SSLError)


def check_files(files: dict[str, str | None]) -> None:
    """Raise an error naming the option and the file when a TLS file is not a readable file.

    ``ssl`` says only "No such file or directory", without the file, or "PEM lib" for a
    folder: this names both.

    Parameters
    ----------
    files : dict
        Option name (``tls_cert``) to path (``~`` expanded); None: not given.

    Raises
    ------
    FileNotFoundError
        A file does not exist; ``filename`` is it.
    IsADirectoryError
        A path names a folder (or another thing that is not a file).
    """
    for option, path in files.items():
        if path is None:
            continue
        file = Path(path).expanduser()
        if not file.exists():
            raise FileNotFoundError(errno.ENOENT, f"TLS file not found ({option})", path)
        if not file.is_file():
            raise IsADirectoryError(errno.EISDIR, f"TLS file is not a file ({option})", path)


def server_context(cert: str, key: str | None, ca: str | None) -> ssl.SSLContext:
    """Return the server-side TLS context of a daemon.

    Parameters
    ----------
    cert, key : str
        PEM certificate chain and private key (``key`` None: the key is in ``cert``).
    ca : str, optional
        CA bundle; when given, clients must present a certificate it signed.

    Raises
    ------
    OSError
        A file is missing or not a file (named, with its option).
    ssl.SSLError
        A file holds no usable certificate or key (named, with its option).
    """
    import ssl

    check_files({"tls_cert": cert, "tls_key": key, "tls_ca": ca})
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    load_cert_chain(context, cert, key)
    if ca:
        load_ca(context, ca)
        context.verify_mode = ssl.CERT_REQUIRED
    return context


def client_context(ca: str | None, cert: str | None, key: str | None) -> ssl.SSLContext:
    """Return a client TLS context verifying the daemon (against ``ca`` when given).

    Parameters
    ----------
    ca : str, optional
        CA bundle of the daemon's certificate; the system CAs otherwise.
    cert, key : str, optional
        Client certificate and its key (None: in ``cert``), for daemons that ask.

    Raises
    ------
    OSError
        A file is missing or not a file (named, with its option).
    ssl.SSLError
        A file holds no usable certificate or key (named, with its option).
    """
    import ssl

    check_files({"tls_ca": ca, "tls_cert": cert, "tls_key": key})
    try:  # with a lab CA, only that one is trusted (not the system's as well)
        context = ssl.create_default_context(cafile=None if ca is None else _path(ca))
    except ssl.SSLError as error:
        raise _unusable(error, _NO_CA.format(ca=ca)) from None
    if cert:
        load_cert_chain(context, cert, key)
    return context


def load_cert_chain(context: ssl.SSLContext, cert: str, key: str | None) -> None:
    """Load a certificate chain and its key into ``context``, naming both when unusable.

    Shared by daemons and clients, so that both say the same thing about the same file.

    Parameters
    ----------
    context : ssl.SSLContext
        The context being built.
    cert, key : str
        PEM certificate chain and private key (``key`` None: the key is in ``cert``).

    Raises
    ------
    ssl.SSLError
        The files hold no usable certificate or key; the message names the options and
        paths (``ssl`` itself says only "PEM lib").
    """
    import ssl

    files = f"tls_cert {cert}" + (f", tls_key {key}" if key else "")
    try:
        context.load_cert_chain(Path(cert).expanduser(), key and Path(key).expanduser())
    except ssl.SSLError as error:
        raise _unusable(error, f"no usable certificate or key in {files}") from None


def load_ca(context: ssl.SSLContext, ca: str) -> None:
    """Load a CA bundle into ``context``, naming it when it holds no certificate.

    Parameters
    ----------
    context : ssl.SSLContext
        The context being built.
    ca : str
        PEM CA bundle.

    Raises
    ------
    ssl.SSLError
        The file holds no usable certificate; the message names the option and path.
    """
    import ssl

    try:
        context.load_verify_locations(_path(ca))
    except ssl.SSLError as error:
        raise _unusable(error, _NO_CA.format(ca=ca)) from None


_NO_CA = "no usable CA certificate in tls_ca {ca}"


def _path(file: str) -> str:
    return str(Path(file).expanduser())


def _unusable(error: ssl.SSLError, what: str) -> ssl.SSLError:
    import ssl

    reason = error.reason or error.strerror or str(error)
    if "PEM lib" in reason:  # OpenSSL's word for "this is not what was expected here"
        reason = f"not a PEM certificate with its private key ({reason})"
    named = ssl.SSLError(error.errno, f"{what}: {reason}")
    named.reason = reason  # read by the command line, which names the files itself
    return named
