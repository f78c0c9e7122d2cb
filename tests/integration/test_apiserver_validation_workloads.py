"""Workload validation as upstream 1.32: invalid objects are answered 422 Invalid with the field path in
details.causes, and nothing is stored."""

from __future__ import annotations

from tests.harness.apicluster import APICluster

NS = "default"


def _template(policy: str | None) -> dict:
    spec: dict = {"containers": [{"name": "c", "image": "busybox"}]}
    if policy:
        spec["restartPolicy"] = policy
    return {"metadata": {"labels": {"app": "v"}}, "spec": spec}


def _rejected(api: APICluster, path: str, obj: dict, field: str, text: str) -> None:
    code, out, _ = api.request("POST", path, obj)
    assert code == 422, (code, out)
    assert out["reason"] == "Invalid"
    assert any(c["field"] == field for c in out["details"]["causes"]), out
    assert text in out["message"], out["message"]
    code, _, _ = api.request("GET", f"{path}/{obj['metadata']['name']}")
    assert code == 404


def test_deployment_template_restart_policy_must_be_always(api: APICluster) -> None:
    obj = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "rp-never"},
           "spec": {"selector": {"matchLabels": {"app": "v"}}, "template": _template("Never")}}
    _rejected(api, f"/apis/apps/v1/namespaces/{NS}/deployments", obj, "spec.template.spec.restartPolicy",
              'Deployment.apps "rp-never" is invalid: spec.template.spec.restartPolicy: Unsupported value: '
              '"Never": supported values: "Always"')


def test_job_template_restart_policy_and_counts(api: APICluster) -> None:
    jobs = f"/apis/batch/v1/namespaces/{NS}/jobs"
    obj = {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "rp-always"},
           "spec": {"template": _template(None)}}
    _rejected(api, jobs, obj, "spec.template.spec.restartPolicy",
              'spec.template.spec.restartPolicy: Required value: valid values: "OnFailure", "Never"')
    obj = {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "neg"},
           "spec": {"backoffLimit": -1, "template": _template("Never")}}
    _rejected(api, jobs, obj, "spec.backoffLimit", "must be greater than or equal to 0")
    obj = {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "empty"},
           "spec": {"template": {"spec": {"restartPolicy": "Never", "containers": []}}}}
    _rejected(api, jobs, obj, "spec.template.spec.containers", "spec.template.spec.containers: Required value")


def test_deployment_strategy_and_ports(api: APICluster) -> None:
    deps = f"/apis/apps/v1/namespaces/{NS}/deployments"

    def dep(name: str, strategy: dict, template: dict | None = None) -> dict:
        return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
                "spec": {"selector": {"matchLabels": {"app": "v"}}, "strategy": strategy,
                         "template": template or _template(None)}}

    _rejected(api, deps, dep("zero", {"rollingUpdate": {"maxSurge": 0, "maxUnavailable": 0}}),
              "spec.strategy.rollingUpdate.maxUnavailable", "may not be 0 when maxSurge is 0")
    _rejected(api, deps, dep("bogus", {"type": "Bogus"}), "spec.strategy.type",
              'Unsupported value: "Bogus": supported values: "Recreate", "RollingUpdate"')
    _rejected(api, deps, dep("recreate", {"type": "Recreate", "rollingUpdate": {"maxSurge": 1}}),
              "spec.strategy.rollingUpdate", "Forbidden")
    tpl = _template(None)
    tpl["spec"]["containers"][0]["ports"] = [{"containerPort": 70000}]
    _rejected(api, deps, dep("port", {}, tpl), "spec.template.spec.containers[0].ports[0].containerPort",
              "must be between 1 and 65535, inclusive")


def test_config_keys_and_tls_secret(api: APICluster) -> None:
    _rejected(api, f"/api/v1/namespaces/{NS}/configmaps",
              {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "badkey"}, "data": {"a b": "x"}},
              "data[a b]", "data[a b]: Invalid value: \"a b\": a valid config key must consist of alphanumeric")
    _rejected(api, f"/api/v1/namespaces/{NS}/secrets",
              {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "tls"}, "type": "kubernetes.io/tls",
               "data": {"tls.crt": "eA=="}}, "data[tls.key]", "Required value")


def test_service_duplicate_port_names(api: APICluster) -> None:
    _rejected(api, f"/api/v1/namespaces/{NS}/services",
              {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "dup"},
               "spec": {"ports": [{"name": "http", "port": 80}, {"name": "http", "port": 81}]}},
              "spec.ports[1].name", 'spec.ports[1].name: Duplicate value: "http"')


def test_service_duplicate_port_and_protocol(api: APICluster) -> None:
    path = f"/api/v1/namespaces/{NS}/services"
    _rejected(api, path, {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "dup-port"},
                          "spec": {"ports": [{"name": "a", "port": 80}, {"name": "b", "port": 80, "protocol": "TCP"}]}},
              "spec.ports[1]", 'spec.ports[1]: Duplicate value: core.ServicePort{Name:"", Protocol:"TCP", '
              'AppProtocol:(*string)(nil), Port:80, TargetPort:intstr.IntOrString{Type:0, IntVal:0, StrVal:""}, NodePort:0}')
    # The same port over another protocol is a different port (DNS on 53/TCP and 53/UDP).
    ok = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "dns-like"},
          "spec": {"ports": [{"name": "tcp", "port": 53}, {"name": "udp", "port": 53, "protocol": "UDP"}]}}
    assert api.request("POST", path, ok)[0] == 201
    assert api.request("DELETE", f"{path}/dns-like")[0] == 200


def test_container_requests_within_limits(api: APICluster) -> None:
    pods = f"/api/v1/namespaces/{NS}/pods"

    def pod(name: str, resources: dict) -> dict:
        return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
                "spec": {"containers": [{"name": "c", "image": "busybox", "resources": resources}]}}

    _rejected(api, pods, pod("over", {"requests": {"cpu": "2", "memory": "64Mi"}, "limits": {"cpu": "1"}}),
              "spec.containers[0].resources.requests",
              'spec.containers[0].resources.requests: Invalid value: "2": must be less than or equal to cpu limit of 1')
    _rejected(api, pods, pod("negative", {"requests": {"memory": "-1Gi"}}),
              "spec.containers[0].resources.requests[memory]",
              'Invalid value: "-1Gi": must be greater than or equal to 0')
    _rejected(api, pods, pod("not-a-quantity", {"requests": {"cpu": "abc"}}),
              "spec.containers[0].resources.requests[cpu]",
              'Invalid value: "abc": quantities must match the regular expression')
    # A Deployment's template is checked the same way.
    tpl = _template(None)
    tpl["spec"]["containers"][0]["resources"] = {"requests": {"memory": "1Gi"}, "limits": {"memory": "512Mi"}}
    _rejected(api, f"/apis/apps/v1/namespaces/{NS}/deployments",
              {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "over"},
               "spec": {"selector": {"matchLabels": {"app": "v"}}, "template": tpl}},
              "spec.template.spec.containers[0].resources.requests", "must be less than or equal to memory limit of 512Mi")
    # Limits alone are fine: requests default to them.
    assert api.request("POST", pods, pod("limits-only", {"limits": {"cpu": "500m"}}))[0] == 201
    assert api.request("DELETE", f"{pods}/limits-only?gracePeriodSeconds=0")[0] == 200


def test_cronjob_schedule_and_time_zone_are_validated(api: APICluster) -> None:
    path = "/apis/batch/v1/namespaces/default/cronjobs"

    def cronjob(name: str, schedule: str, **spec: object) -> dict:
        return {"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": name},
                "spec": {"schedule": schedule, **spec, "jobTemplate": {"spec": {"template": {"spec": {
                    "restartPolicy": "Never", "containers": [{"name": "c", "image": "busybox"}]}}}}}}

    for name, schedule, spec, field in [("cj-bogus", "bogus", {}, "spec.schedule"),
                                        ("cj-61", "61 * * * *", {}, "spec.schedule"),
                                        ("cj-tz", "TZ=UTC 0 * * * *", {}, "spec.schedule"),
                                        ("cj-zone", "0 * * * *", {"timeZone": "Nowhere/Atlantis"}, "spec.timeZone")]:
        code, status, _ = api.request("POST", path, cronjob(name, schedule, **spec))
        assert code == 422 and status["reason"] == "Invalid", (name, status)
        assert [c["field"] for c in status["details"]["causes"]] == [field], status
        assert status["message"].startswith(f'CronJob.batch "{name}" is invalid: {field}: Invalid value:')
        assert api.request("GET", f"{path}/{name}")[0] == 404
    for name, schedule in [("cj-ok", "*/5 * * * *"), ("cj-hourly", "@hourly")]:
        assert api.request("POST", path, cronjob(name, schedule, timeZone="Europe/Berlin"))[0] == 201
        assert api.request("DELETE", f"{path}/{name}")[0] == 200


def test_ingress_paths_need_a_path_type(api: APICluster) -> None:
    path = "/apis/networking.k8s.io/v1/namespaces/default/ingresses"
    backend = {"service": {"name": "web", "port": {"number": 80}}}
    body = {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {"name": "no-type"},
            "spec": {"rules": [{"host": "a.example", "http": {"paths": [
                {"path": "/", "pathType": "Prefix", "backend": backend}, {"path": "/x", "backend": backend}]}}]}}
    code, status, _ = api.request("POST", path, body)
    assert code == 422 and status["message"] == (
        'Ingress.networking.k8s.io "no-type" is invalid: spec.rules[0].http.paths[1].pathType: '
        "Required value: pathType must be specified")
    assert api.request("GET", f"{path}/no-type")[0] == 404
    body["spec"]["rules"][0]["http"]["paths"][1]["pathType"] = "Exact"
    assert api.request("POST", path, body)[0] == 201
    assert api.request("DELETE", f"{path}/no-type")[0] == 200
