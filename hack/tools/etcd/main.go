// Command etcd is the upstream etcd server (go.etcd.io/etcd/server/v3), built
// from the Go module proxy as kube-apiserver's storage in meshd's e2e tests.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}
