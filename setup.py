"""webqq: a Tornado-based WebQQ client that runs as a daemon."""
from setuptools import find_packages, setup

setup(
    name="webqq",
    version="0.1.0",
    description="A WebQQ (2013 protocol) client daemon on Tornado, with a protocol simulator",
    long_description=open("README.rst", encoding="utf-8").read(),
    long_description_content_type="text/x-rst",
    python_requires=">=3.9",
    packages=find_packages(exclude=["tests", "tests.*", "bench"]),
    include_package_data=True,
    package_data={"webqq.simulator": ["certs/*.pem", "*.json"],
                  # The chat page: HTML, CSS, JavaScript and pictures, served as they are.
                  "webqq.simulator.web": ["index.html", "static/*.*", "static/pictures/*"],
                  # Example scenario files of webqq-simulator test.
                  "webqq.testing": ["scenarios/*.toml"]},
    install_requires=[
        # Every byte of I/O runs on Tornado's IOLoop: HTTPStream registers raw
        # sockets on it, the simulator and the control API are Tornado servers.
        "tornado>=6.2",
        # Scenario files of webqq-simulator test are TOML: the standard library reads it
        # from 3.11 (tomllib); tomli is that same parser, for 3.9 and 3.10.
        'tomli>=1.1; python_version < "3.11"',
        # /metrics in the Prometheus text format: the well-kept reference client writes
        # the exposition (escaping, histograms, content type) that scrapers and its own
        # parser agree on; pure Python, no dependencies of its own. One registry per
        # daemon, never the global one.
        "prometheus_client>=0.17",
    ],
    extras_require={
        "test": [
            # The test runner; its 10.x will drop the hook style pytest-tornado uses.
            "pytest>=8,<10",
            # gen_test and the io_loop fixture, as the design card asks.
            "pytest-tornado>=0.8",
            # pytest-tornado 0.8.1 (the newest) imports pkg_resources, which setuptools 81
            # removed; Python 3.12's venv has no setuptools of its own to fall back on.
            "setuptools<81",
            # A hung test fails after a bound instead of stalling CI.
            "pytest-timeout>=2.1",
            # Throwaway CAs and certificates for the HTTPS tests (right and wrong names).
            "trustme>=1.0",
            # A real OneBot v11 SDK drives the daemon's API in tests/test_api_daemon.py
            # (reverse WebSocket, send_msg, quick replies): pure-Python dependencies
            # (Quart, httpx); nonebot2 would add pydantic-core and a driver to pick.
            "aiocqhttp>=1.4,<2",
            # A real SMTP server on loopback receives the alerts' mails in
            # tests/test_alerts.py (the daemon sends through smtplib); pure Python.
            "aiosmtpd>=1.4",
        ],
    },
    entry_points={
        "console_scripts": [
            "webqq = webqq.daemon.cli:main",
            "webqq-simulator = webqq.simulator.cli:main",
        ],
        # The pytest plugin of webqq.testing (the webqq_sim fixture). Named as its module
        # so that pytest_plugins = "webqq.testing.plugin" or -p with that name, where the
        # entry point is also installed, finds it registered instead of loading it twice.
        "pytest11": [
            "webqq.testing.plugin = webqq.testing.plugin",
        ],
    },
    scripts=[],
    classifiers=[
        "Programming Language :: Python :: 3",
        "Framework :: Tornado",
        "Operating System :: POSIX",
    ],
)
