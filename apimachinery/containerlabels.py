"""The labels a kubelet puts on the containers it runs: a contract between node components.

The kubelet writes them (Docker labels; the process runtime keeps them in a file) and reads them back
to adopt its containers after a restart; the service proxy reads the docker runtime's sandbox labels
to find the network namespaces of its node's pods (proxy/netns.py). Names follow Kubernetes'
dockershim where it had one.
"""

LABEL_POD_NAME = "io.kubernetes.pod.name"
LABEL_POD_NAMESPACE = "io.kubernetes.pod.namespace"
LABEL_POD_UID = "io.kubernetes.pod.uid"
LABEL_CONTAINER_NAME = "io.kubernetes.container.name"
LABEL_RESTART_COUNT = "io.kubernetes.container.restartCount"
LABEL_CONTAINER_KIND = "io.pilothouse.container.kind"  # "init" | "sidecar" | "regular"
LABEL_CONTAINER_HASH = "io.kubernetes.container.hash"
LABEL_NODE_NAME = "io.pilothouse.node.name"
LABEL_TYPE = "io.kubernetes.docker.type"  # "podsandbox" | "container" (docker runtime)
LABEL_ROOT = "io.pilothouse.kubelet.root-dir"  # with the node name: which kubelet owns the container
