package ca

import "context"

// identityKey keys the authenticated Identity in a context.
type identityKey struct{}

// WithIdentity returns ctx carrying id, the caller authenticated for the
// request or stream of ctx.
func WithIdentity(ctx context.Context, id Identity) context.Context {
	return context.WithValue(ctx, identityKey{}, id)
}

// IdentityFrom returns the authenticated caller WithIdentity put in ctx; ok
// is false for an unauthenticated request (the plaintext port, or XDS_AUTH
// off).
func IdentityFrom(ctx context.Context) (id Identity, ok bool) {
	id, ok = ctx.Value(identityKey{}).(Identity)
	return id, ok
}
