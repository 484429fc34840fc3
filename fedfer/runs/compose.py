"""Compose files for lab hosts, one host per file: the SuperLink's, a SuperNode host's, or both on one.

Written from the command builders `fedfer deploy` runs (`superlink_command`, `supernode_command`,
`node_config`), so a container runs exactly what the tested launcher runs. Each host's file holds
only that host's services and variables: a SuperNode-only host starts no SuperLink, dials it at the
address it is given, and needs none of the SuperLink host's paths. Every path comes from one lab
folder outside the repository, `$FEDFER_LAB` (see docker/README.md):

    certs/ca.crt, certs/server.pem, certs/server.key, certs/supernodes/node-<i>.key   (fedfer lab certs)
    nodes/node-<i>/        SuperNode i's data bundle (fedfer lab nodes)
    data/, results/        the SuperLink host's workspace and results, mounted at the same paths

Mounts use the long syntax, which never creates a missing source (the short one makes it an empty
root-owned directory): `up` fails naming the path instead. No variable is required, so `config`,
`down` and `pull` work on any host without them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fedfer import __version__
from fedfer.flower.certs import Credentials
from fedfer.flower.runtime import superlink_command
from fedfer.runs.bundles import BUNDLE_IFER, BUNDLE_SUBJECT
from fedfer.runs.supernodes import node_config, supernode_command

SUPERLINK = "superlink"  # the SuperLink's service name, also a name in its certificate (--host superlink)
SUPERLINK_PORT = 9093  # Fleet, Control and Runtime APIs (Flower 1.42 serves them all on one port)
NODE_PORT = 9094  # a SuperNode's local ClientApp API; every container has its own loopback
IMAGES = {"superlink": f"fedfer-superlink:{__version__}", "supernode": f"fedfer-supernode:{__version__}"}
LAB = "${FEDFER_LAB:-/srv/fedfer-lab}"
USER = "${FEDFER_UID:-1000}:${FEDFER_GID:-1000}"  # the owner of the lab folder: keys are readable by it only
CERTS = Credentials(Path("/certs"))  # where the containers see the credentials
LAB_CERTS = Credentials(Path(LAB, "certs"))  # where the host keeps them (`fedfer lab certs $FEDFER_LAB/certs`)
STATE = "/state"  # the SuperLink's database, in a named volume
NODE_DATA = Path("/data")  # where a SuperNode container sees its bundle
# A SuperNode holds its ClientApp process (PyTorch, v() and the subject's features) besides itself.
NODE_MEMORY = "2g"
HEALTH = "import sys; from fedfer.flower.runtime import flower_healthy; sys.exit(not flower_healthy({}))"


def bind(source: str, target: str | Path, *, read_only: bool = False) -> dict[str, Any]:
    mount: dict[str, Any] = {"type": "bind", "source": source, "target": str(target)}
    if read_only:
        mount["read_only"] = True
    return mount


def healthcheck(arguments: str) -> dict[str, Any]:
    """Docker's probe of a Flower process: `flower_healthy(arguments)`, the check `fedfer deploy` waits on."""
    return {
        "test": ["CMD", "python", "-c", HEALTH.format(arguments)],
        "interval": "15s",
        "timeout": "5s",
        "retries": 3,
        "start_period": "30s",
    }


def superlink_service() -> dict[str, Any]:
    command = superlink_command(host="0.0.0.0", port=SUPERLINK_PORT, database=f"{STATE}/state.db", credentials=CERTS)
    certs = [(LAB_CERTS.ca_cert, CERTS.ca_cert), (LAB_CERTS.server_cert, CERTS.server_cert)]
    certs.append((LAB_CERTS.server_key, CERTS.server_key))
    return {
        "image": IMAGES["superlink"],
        "user": USER,
        "init": True,  # reaps the ServerApp processes the SuperLink starts
        "restart": "unless-stopped",
        "command": command,
        "ports": [f"{SUPERLINK_PORT}:{SUPERLINK_PORT}"],
        "volumes": [
            *(bind(str(host), container, read_only=True) for host, container in certs),
            {"type": "volume", "source": "superlink-state", "target": STATE},
            # The ServerApp reads the central v() and writes the results at the paths of the run
            # config, which was written on this host: the same paths inside the container.
            bind(f"{LAB}/data", f"{LAB}/data", read_only=True),
            bind(f"{LAB}/results", f"{LAB}/results"),
        ],
        "healthcheck": healthcheck(f"'localhost', {SUPERLINK_PORT}, '{CERTS.ca_cert}'"),
    }


def supernode_service(index: int, superlink: str) -> dict[str, Any]:
    """SuperNode `index` (partition-id = index), dialling the SuperLink at `superlink` (host:port)."""
    config = node_config(index, NODE_DATA / BUNDLE_SUBJECT, NODE_DATA / BUNDLE_IFER)
    return {
        "image": IMAGES["supernode"],
        "user": USER,
        "init": True,  # reaps the ClientApp processes the SuperNode starts
        "restart": "unless-stopped",  # also retries a node refused before its key was registered
        "mem_limit": NODE_MEMORY,
        "command": supernode_command(
            superlink=superlink, port=NODE_PORT, node_config=config, credentials=CERTS, index=index
        ),
        "volumes": [
            bind(f"{LAB}/nodes/node-{index}", NODE_DATA),  # writable: subject/personal/ is the node's own state
            bind(str(LAB_CERTS.ca_cert), CERTS.ca_cert, read_only=True),
            bind(str(LAB_CERTS.node_key(index)), CERTS.node_key(index), read_only=True),
        ],
        "healthcheck": healthcheck(f"'127.0.0.1', {NODE_PORT}"),
    }


def compose_file(nodes: range, superlink: str | None) -> dict[str, Any]:
    """One host's compose file: SuperNodes `nodes` dialling `superlink`; with `superlink` None, the
    SuperLink runs in this file too and they dial it by its service name."""
    services: dict[str, Any] = {}
    if superlink is None:
        services[SUPERLINK] = superlink_service()
    for index in nodes:
        service = supernode_service(index, superlink or f"{SUPERLINK}:{SUPERLINK_PORT}")
        if superlink is None:  # same host: start once the SuperLink answers its health check
            service["depends_on"] = {SUPERLINK: {"condition": "service_healthy"}}
        services[f"supernode-{index}"] = service
    compose: dict[str, Any] = {"services": services}
    if superlink is None:
        compose["volumes"] = {"superlink-state": {}}
    return compose


def node_range(text: str) -> range:
    """`--nodes`: "16-30" (both included) or "4"."""
    first, _, last = text.partition("-")
    try:
        start, stop = int(first), int(last or first)
    except ValueError:
        raise ValueError(f"--nodes {text!r}: expected FIRST-LAST or one index, e.g. 0-15") from None
    if not 0 <= start <= stop:
        raise ValueError(f"--nodes {text!r}: need 0 <= FIRST <= LAST")
    return range(start, stop + 1)


def compose_text(nodes: range, superlink: str | None, command: str) -> str:
    """The YAML of `compose_file`, headed by the command that wrote it and the variables it reads."""
    import yaml

    role = "the SuperLink" if superlink is None else f"SuperNodes dialling {superlink}"
    if superlink is None and nodes:
        role += f" and SuperNodes {nodes.start}-{nodes.stop - 1}"
    elif nodes:
        role += f": nodes {nodes.start}-{nodes.stop - 1}"
    header = [
        f"# One lab host: {role}. Written by `{command}`;",
        "# write it again rather than edit it (docker/README.md). Variables, none required:",
        "#   FEDFER_LAB   the lab folder, outside the repository (default /srv/fedfer-lab)",
        "#   FEDFER_UID, FEDFER_GID   the lab folder's owner, whom the containers run as (default 1000)",
    ]
    body = yaml.safe_dump(compose_file(nodes, superlink), sort_keys=False, width=200)
    return "\n".join(header) + "\n" + body
