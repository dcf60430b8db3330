package ca

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// DirStore serves the plug-in CA from files, as istiod reads the cacerts
// Secret mounted at ROOT_CA_DIR (./etc/cacerts): Get of the cacerts Secret
// returns the files ca-cert.pem, ca-key.pem, root-cert.pem and
// cert-chain.pem of Dir when ca-key.pem is there. Everything else (and
// cacerts when Dir holds no key) goes to Next.
type DirStore struct {
	Dir  string
	Next SecretStore
}

// pluggedFiles are the files a plug-in CA directory holds.
var pluggedFiles = []string{CACertKey, CAKeyKey, RootCertKey, CertChainKey}

// Get implements SecretStore.
func (d DirStore) Get(ctx context.Context, ns, name string) (map[string][]byte, error) {
	if name != PluggedSecretName || d.Dir == "" {
		return d.Next.Get(ctx, ns, name)
	}
	if _, err := os.Stat(filepath.Join(d.Dir, CAKeyKey)); errors.Is(err, fs.ErrNotExist) {
		return d.Next.Get(ctx, ns, name)
	}
	data := map[string][]byte{}
	for _, f := range pluggedFiles {
		b, err := os.ReadFile(filepath.Join(d.Dir, f))
		if errors.Is(err, fs.ErrNotExist) {
			continue // reported by the plug-in CA's own checks, naming the key
		}
		if err != nil {
			return nil, fmt.Errorf("plug-in CA directory %s: %w", d.Dir, err)
		}
		data[f] = b
	}
	return data, nil
}

// Create implements SecretStore; it never writes to Dir.
func (d DirStore) Create(ctx context.Context, ns, name string, data map[string][]byte) error {
	return d.Next.Create(ctx, ns, name, data)
}
