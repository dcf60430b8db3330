package testenv

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"time"
)

// Issuer is the API server's --service-account-issuer.
const Issuer = "https://kubernetes.default.svc.cluster.local"

// SAClaims are the claims of a service-account token as the API server
// issues them.
type SAClaims struct {
	Namespace, ServiceAccount, UID string
	Audiences                      []string
	Expiry                         time.Time
}

// SignServiceAccountToken signs claims with the API server's own
// service-account key, for tokens TokenRequest will not issue (one that has
// already expired). With key set, it signs with that key instead (a token
// from another cluster's issuer).
func (e *Env) SignServiceAccountToken(c SAClaims, key *rsa.PrivateKey) (string, error) {
	if key == nil {
		var err error
		if key, err = readRSAKey(filepath.Join(e.Dir, "pki", "sa.key")); err != nil {
			return "", err
		}
	}
	now := time.Now()
	claims := map[string]any{
		"iss": Issuer, "sub": "system:serviceaccount:" + c.Namespace + ":" + c.ServiceAccount,
		"aud": c.Audiences, "exp": c.Expiry.Unix(), "iat": now.Add(-2 * time.Hour).Unix(), "nbf": now.Add(-2 * time.Hour).Unix(),
		"kubernetes.io": map[string]any{"namespace": c.Namespace,
			"serviceaccount": map[string]string{"name": c.ServiceAccount, "uid": c.UID}},
	}
	header, err := json.Marshal(map[string]string{"alg": "RS256", "typ": "JWT"})
	if err != nil {
		return "", err
	}
	body, err := json.Marshal(claims)
	if err != nil {
		return "", err
	}
	enc := base64.RawURLEncoding
	signed := enc.EncodeToString(header) + "." + enc.EncodeToString(body)
	sum := sha256.Sum256([]byte(signed))
	sig, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, sum[:])
	if err != nil {
		return "", err
	}
	return signed + "." + enc.EncodeToString(sig), nil
}

// readRSAKey reads a PEM PKCS#1 RSA private key.
func readRSAKey(path string) (*rsa.PrivateKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	block, _ := pem.Decode(b)
	if block == nil {
		return nil, errors.New(path + ": no PEM block")
	}
	return x509.ParsePKCS1PrivateKey(block.Bytes)
}
