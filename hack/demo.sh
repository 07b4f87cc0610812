#!/usr/bin/env bash
# `make demo`: bring up the local cluster and MinIO, build the project image, and run a Job from
# it that writes an object to MinIO through the Service DNS name and reads it back.
source "$(dirname "$0")/lib.sh"
source "$HACK_DIR/cluster/config.sh"
NS=continuum-demo

kc() { "$CACHE_DIR/kube-$KUBE_VERSION/bin/kubectl" --kubeconfig "$KUBECONFIG_OUT" "$@"; }

prepare_namespace() {
  kc create namespace "$NS" --dry-run=client -o yaml | kc apply -f - >/dev/null
  kc label namespace "$NS" pod-security.kubernetes.io/enforce=restricted --overwrite >/dev/null
  kc -n continuum-system get secret minio-credentials -o json \
    | python3 -c 'import json,sys; s=json.load(sys.stdin); print(json.dumps({"apiVersion":"v1","kind":"Secret","metadata":{"name":"s3-credentials"},"data":s["data"]}))' \
    | kc -n "$NS" apply -f - >/dev/null
}

roundtrip_job() {
  local image=$1
  cat <<YAML
apiVersion: batch/v1
kind: Job
metadata: {name: s3-roundtrip}
spec:
  backoffLimit: 0
  ttlSecondsAfterFinished: 3600
  template:
    spec:
      restartPolicy: Never
      containers:
      - name: roundtrip
        image: $image
        imagePullPolicy: IfNotPresent
        command: [python, -c]
        args:
        - |
          import boto3, datetime, os
          s3 = boto3.client("s3", endpoint_url=os.environ["S3_ENDPOINT"])
          body = f"hello from a pod at {datetime.datetime.now(datetime.UTC).isoformat()}".encode()
          s3.put_object(Bucket="continuum", Key="demo/hello.txt", Body=body)
          back = s3.get_object(Bucket="continuum", Key="demo/hello.txt")["Body"].read()
          assert back == body, "read back something else"
          print("wrote and read back s3://continuum/demo/hello.txt:", back.decode())
        env:
        - {name: S3_ENDPOINT, value: "http://minio.continuum-system.svc:$MINIO_PORT"}
        - {name: AWS_DEFAULT_REGION, value: us-east-1}
        envFrom: [{secretRef: {name: s3-credentials}}]
        securityContext:
          allowPrivilegeEscalation: false
          capabilities: {drop: [ALL]}
          runAsNonRoot: true
          seccompProfile: {type: RuntimeDefault}
YAML
}

main() {
  "$HACK_DIR/cluster-up.sh"
  step "Building the project image and loading it into the cluster"
  "$HACK_DIR/image.sh"
  local image; image="continuum:$(python3 -c 'import tomllib;print(tomllib.load(open("'"$REPO_DIR"'/pyproject.toml","rb"))["project"]["version"])')"
  step "Running a Job from $image that writes to MinIO and reads it back"
  prepare_namespace
  kc -n "$NS" delete job s3-roundtrip --ignore-not-found >/dev/null
  roundtrip_job "$image" | kc -n "$NS" apply -f - >/dev/null
  kc -n "$NS" wait --for=condition=complete job/s3-roundtrip --timeout=180s >/dev/null \
    || { kc -n "$NS" logs job/s3-roundtrip >&2 || true; die "the demo Job did not complete"; }
  kc -n "$NS" logs job/s3-roundtrip
  step "Demo done. Look around:"
  cat >&2 <<MSG
  export KUBECONFIG=$KUBECONFIG_OUT
  kubectl -n $NS get jobs,pods          # the Job that ran
  kubectl -n $NS logs job/s3-roundtrip  # what it printed
  S3 endpoint http://$NODE_IP:$MINIO_PORT, credentials in $STATE_DIR/s3.env, object s3://continuum/demo/hello.txt
  make cluster-down                     # stop everything and restore the host
MSG
}

main "$@"
