"""Email: messages per second from the outbox to an SMTP server, and render time per template.

1. Throughput: an in-process kernel (SQLite, no Redis: one process runs the relay and the job
   queue, as ``coderic serve`` does) queues N messages with ``plugin.email.send`` in one
   transaction, and its ``email.send`` jobs deliver them to aiosmtpd on a free loopback port;
   measured from the commit to the last message received. Also printed: what one ``send()``
   with its own commit costs (N/10 of them, before). Baseline: the same N
   rendered messages sent with the standard library's ``smtplib`` in one thread, one
   connection per message (as the kernel's SMTP backend does), to the same server.
2. Render time per template: the kernel's render of one template (subject, text and HTML,
   with the shared layout and StrictUndefined) against a bare Jinja2 ``Environment`` rendering
   the same three files with the same context. Medians of ``--renders`` renders.

Informative: no target. Always exits 0.
"""

from __future__ import annotations

import argparse
import asyncio
import smtplib
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))  # the SMTP server the tests use

from smtp_server import SMTPServer  # noqa: E402

SECRET = "bench-secret-key-that-is-long-enough-0123456789"


async def throughput(count: int, workdir: Path) -> dict[str, float]:
    from coderic_kernel.email.tables import EmailMessage
    from coderic_kernel.testing import start_kernel

    server = SMTPServer(workdir)
    server.start()
    try:
        config = {"email_url": server.url(), "secret_key": SECRET, "public_url": "https://coderic.example",
                  "outbox_poll_seconds": 0.01, "log_level": "WARNING"}
        async with start_kernel(plugins=[], config=config, database="sqlite", workdir=workdir) as running:
            email = running.plugin("email").email
            started = time.perf_counter()
            for n in range(count // 10):  # send() cost: one transaction per message, as a request would
                await email.send("email.welcome", f"warm{n}@example.org")
            enqueued = time.perf_counter() - started
            while len(server.inbox.received) < count // 10:
                await asyncio.sleep(0.005)
            while await EmailMessage.count().where(EmailMessage.status == "queued"):
                await asyncio.sleep(0.005)
            server.inbox.received.clear()
            async with running.kernel.database.transaction():  # then N at once: the outbox fills, then drains
                # A write first, so SQLite takes the write lock now rather than upgrading later.
                await EmailMessage.update({EmailMessage.status: EmailMessage.status}).where(EmailMessage.id == -1)
                for n in range(count):
                    await email.send("email.welcome", f"reader{n}@example.org")
            started = time.perf_counter()
            while len(server.inbox.received) < count:
                await asyncio.sleep(0.005)
            kernel_seconds = time.perf_counter() - started
            await EmailMessage.delete().where(EmailMessage.to_address.like("warm%"))
            raws = [row["raw"].encode("utf-8", "surrogateescape") for row in await EmailMessage.select(EmailMessage.raw)]
        received = len(server.inbox.received)
        started = time.perf_counter()
        for n, raw in enumerate(raws):
            with smtplib.SMTP("127.0.0.1", server.port) as client:
                client.ehlo()
                client.sendmail("hola@coderic.example", [f"reader{n}@example.org"], raw)
        bare_seconds = time.perf_counter() - started
        assert len(server.inbox.received) == received + count
    finally:
        server.stop()
    return {"kernel_per_s": count / kernel_seconds, "enqueue_per_s": (count // 10) / enqueued, "bare_per_s": count / bare_seconds}


def render_times(renders: int) -> list[tuple[str, float, float]]:
    import jinja2
    from coderic_kernel.builtins.email import KERNEL_TEMPLATES, TEMPLATES
    from coderic_kernel.config import load_configuration
    from coderic_kernel.email.service import service_for
    from coderic_kernel.kernel import Kernel

    kernel = Kernel.boot(load_configuration(environ={}, read_files=False, overrides={"environment": "test", "secret_key": SECRET}))
    service = service_for(kernel)
    bare = jinja2.Environment(loader=jinja2.PrefixLoader({"email": jinja2.FileSystemLoader(str(TEMPLATES))}),
                              autoescape=jinja2.select_autoescape(["html"]))
    results = []
    for template in KERNEL_TEMPLATES:
        name = f"email.{template.name}"
        context = {**template.sample, "recipient": {"address": "ana@example.org", "name": "Ana", "user_id": None},
                   "link": service.link, "public_url": service.public_url, "unsubscribe_url": None}
        bare_context = {**context, "language": "en", "layout": {"html": "email/en/_layout.html", "text": "email/en/_layout.txt"}}
        parts = [f"email/en/{template.name}.{p}" for p in ("subject.txt", "txt", "html")]

        def kernel_once() -> None:
            service.templates.render(name, context, ["en"])

        def bare_once() -> None:
            for part in parts:
                bare.get_template(part).render(bare_context)

        results.append((name, _median_us(kernel_once, renders), _median_us(bare_once, renders)))
    return results


def _median_us(fn: Any, renders: int) -> float:
    for _ in range(20):
        fn()  # warm: templates compiled and cached
    samples = []
    for _ in range(renders):
        started = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples) * 1e6


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=300, help="messages per throughput run")
    parser.add_argument("--renders", type=int, default=500, help="renders per template")
    parser.add_argument("--quick", action="store_true", help="100 messages, 100 renders")
    args = parser.parse_args(argv)
    if args.quick:
        args.messages, args.renders = 100, 100
    with tempfile.TemporaryDirectory() as folder:
        numbers = asyncio.run(throughput(args.messages, Path(folder)))
    print(f"email throughput, {args.messages} messages, one process (relay + in-process queue), SQLite, aiosmtpd on loopback")
    print(f"  kernel, outbox to SMTP server: {numbers['kernel_per_s']:8.1f} msg/s")
    print(f"  (send() with its own commit, render included: {numbers['enqueue_per_s']:.1f} per second)")
    print(f"  bare smtplib, same messages: {numbers['bare_per_s']:8.1f} msg/s")
    print(f"  ratio kernel / bare: {numbers['kernel_per_s'] / numbers['bare_per_s']:.2f}")
    print(f"\nrender time per template (median of {args.renders}, en; kernel: subject + text + HTML with layout)")
    print(f"  {'TEMPLATE':<24} {'KERNEL µs':>10} {'BARE µs':>10} {'RATIO':>7}")
    renders = {}
    for name, kernel_us, bare_us in render_times(args.renders):
        print(f"  {name:<24} {kernel_us:>10.0f} {bare_us:>10.0f} {kernel_us / bare_us:>7.2f}")
        renders[name] = {"kernel_us": kernel_us, "bare_us": bare_us}
    return {**numbers, "renders": renders}


if __name__ == "__main__":
    main()
