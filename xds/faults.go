package xds

import "github.com/meshd/meshd/translate"

// outputFault, when set, changes a scope's output after it passed
// validation and before it is served. Only test builds set it
// (faults_inject.go, build tag meshd_faults): it stands for config that
// validation let through but a proxy rejects, so that the e2e suite can
// drive real Envoy down the NACK path. Production builds leave it nil.
var outputFault func(*translate.Output) *translate.Output
