package xds

import (
	"context"
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/meshd/meshd/internal/ca"
	"github.com/meshd/meshd/internal/model"
)

// StreamAuth returns a stream interceptor for the secure port: an ADS
// stream whose bearer token authn does not accept is refused with
// Unauthenticated (and counted in failures as "unauthenticated"); an
// accepted one carries its Identity in its context (ca.IdentityFrom), which
// the server then binds to the proxy's node (see authorize). Other methods
// pass through: Istio's CA service authenticates its own calls.
func StreamAuth(authn ca.CallerAuthenticator, failures *prometheus.CounterVec) grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		if !adsMethods[info.FullMethod] {
			return handler(srv, ss)
		}
		id, err := authn.Authenticate(ss.Context())
		if err != nil {
			failures.WithLabelValues("unauthenticated").Inc()
			// As istiod: the caller learns nothing of why.
			return status.Error(codes.Unauthenticated, "authentication failure")
		}
		return handler(srv, identityStream{ServerStream: ss, ctx: ca.WithIdentity(ss.Context(), id)})
	}
}

// identityStream is a ServerStream whose context carries the caller's
// Identity.
type identityStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s identityStream) Context() context.Context { return s.ctx }

// errAuthz is wrapped by the errors of authorize.
var errAuthz = errors.New("authorization failed")

// authorize checks a proxy's node against the identity its stream
// authenticated as, as istiod's checkConnectionIdentity: the namespace the
// proxy's config is built for must be the identity's, and a service account
// it states (SERVICE_ACCOUNT metadata) must be the identity's. It returns the
// failure reason for meshd_xds_auth_failures_total with the error.
func authorize(p *model.Proxy, id ca.Identity) (reason string, err error) {
	if p.Namespace != id.Namespace {
		return "namespace", fmt.Errorf("%w: node %q claims namespace %q but its token is of %s",
			errAuthz, p.NodeID, p.Namespace, id.SPIFFEID())
	}
	if p.ServiceAccount != "" && p.ServiceAccount != id.ServiceAccount {
		return "service_account", fmt.Errorf("%w: node %q claims service account %q but its token is of %s",
			errAuthz, p.NodeID, p.ServiceAccount, id.SPIFFEID())
	}
	return "", nil
}
