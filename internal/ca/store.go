package ca

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"sync"
)

// ErrNotFound is returned (possibly wrapped) by SecretStore.Get when the
// Secret does not exist.
var ErrNotFound = errors.New("secret not found")

// ErrAlreadyExists is returned (possibly wrapped) by SecretStore.Create when
// another writer created the Secret first.
var ErrAlreadyExists = errors.New("secret already exists")

// SecretStore is the CA's only access to Kubernetes Secrets.
type SecretStore interface {
	// Get returns the data of Secret ns/name, or an error wrapping ErrNotFound.
	Get(ctx context.Context, ns, name string) (map[string][]byte, error)
	// Create creates Secret ns/name with data, or returns an error wrapping
	// ErrAlreadyExists if it exists already (it is never overwritten).
	Create(ctx context.Context, ns, name string, data map[string][]byte) error
}

// MemoryStore is an in-memory SecretStore for tests, safe for concurrent use.
// The zero value is empty and ready.
type MemoryStore struct {
	mu      sync.Mutex
	secrets map[string]map[string][]byte
	creates int
}

// Get implements SecretStore.
func (m *MemoryStore) Get(_ context.Context, ns, name string) (map[string][]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	data, ok := m.secrets[ns+"/"+name]
	if !ok {
		return nil, fmt.Errorf("getting secret %s/%s: %w", ns, name, ErrNotFound)
	}
	return cloneData(data), nil
}

// Create implements SecretStore.
func (m *MemoryStore) Create(_ context.Context, ns, name string, data map[string][]byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	key := ns + "/" + name
	if _, ok := m.secrets[key]; ok {
		return fmt.Errorf("creating secret %s: %w", key, ErrAlreadyExists)
	}
	if m.secrets == nil {
		m.secrets = map[string]map[string][]byte{}
	}
	m.secrets[key] = cloneData(data)
	m.creates++
	return nil
}

// Creates reports how many Secrets were successfully created.
func (m *MemoryStore) Creates() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.creates
}

// cloneData deep-copies Secret data so callers never share byte slices.
func cloneData(data map[string][]byte) map[string][]byte {
	out := make(map[string][]byte, len(data))
	for k, v := range maps.All(data) {
		out[k] = append([]byte(nil), v...)
	}
	return out
}
