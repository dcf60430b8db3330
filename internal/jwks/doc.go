// Package jwks fetches the JSON Web Key Sets of RequestAuthentications'
// jwksUri for the translator, as istiod does by default
// (PILOT_JWT_ENABLE_REMOTE_JWKS=false: istiod fetches the keys and hands
// them to Envoy inline, so sidecars never call the issuer).
//
// The Resolver watches the Store for RequestAuthentications, fetches every
// jwksUri they name (or, for a rule with neither jwks nor jwksUri, the
// jwks_uri of the issuer's OpenID discovery document), refreshes each key
// set every PILOT_JWT_PUB_KEY_REFRESH_INTERVAL (a failed one sooner), and
// publishes the result into the Store as a model.JWKS (KindJWKS). A failed
// fetch keeps serving the last good key set; with none, translate fails
// closed (every token from that issuer is rejected) and reports it on the
// RequestAuthentication.
package jwks
