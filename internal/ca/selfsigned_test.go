package ca

import (
	"context"
	"crypto/rsa"
	"crypto/x509"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/meshd/meshd/internal/testcerts"
)

func TestSelfSignedRootCreatedWithIstiodDefaults(t *testing.T) {
	store := &MemoryStore{}
	c, err := New(context.Background(), store, Options{TrustDomain: "bank.example"})
	require.NoError(t, err)
	require.Equal(t, SourceSelfSigned, c.Source())

	data, err := store.Get(context.Background(), DefaultNamespace, SelfSignedSecretName)
	require.NoError(t, err)
	require.ElementsMatch(t, []string{CACertKey, CAKeyKey, RootCertKey, CertChainKey, PrivateKeyKey}, keys(data))
	require.Equal(t, data[CACertKey], data[RootCertKey])
	require.Equal(t, data[CACertKey], c.Root())

	certs, err := parseCertsPEM(c.Root())
	require.NoError(t, err)
	root := certs[0]
	require.True(t, root.IsCA)
	require.Equal(t, x509.KeyUsageCertSign, root.KeyUsage)
	require.Equal(t, []string{"bank.example"}, root.Subject.Organization)
	require.Equal(t, root.Subject.String(), root.Issuer.String())
	require.WithinDuration(t, time.Now().Add(DefaultSelfSignedCACertTTL), root.NotAfter, time.Minute)
	pub, ok := root.PublicKey.(*rsa.PublicKey)
	require.True(t, ok, "RSA root as istiod")
	require.Equal(t, 2048, pub.N.BitLen())
	require.Contains(t, string(data[CAKeyKey]), "BEGIN RSA PRIVATE KEY", "PKCS#1 as istiod writes it")
}

func TestSelfSignedRootReusedAcrossRestarts(t *testing.T) {
	store := &MemoryStore{}
	first := newSelfSignedCA(t, store)
	second := newSelfSignedCA(t, store)
	require.Equal(t, first.Root(), second.Root(), "byte-identical root after a restart")
	require.Equal(t, 1, store.Creates(), "the Secret is created once")
}

func TestSelfSignedRootReadFromIstiodSecret(t *testing.T) {
	// A Secret istiod wrote holds only ca-cert.pem and ca-key.pem that matter.
	root := testcerts.NewCA("istiod root", testcerts.Options{})
	store := &MemoryStore{}
	require.NoError(t, store.Create(context.Background(), DefaultNamespace, SelfSignedSecretName,
		map[string][]byte{CACertKey: root.CertPEM, CAKeyKey: root.KeyPEM}))
	c := newSelfSignedCA(t, store)
	require.Equal(t, root.CertPEM, c.Root())
}

func TestSelfSignedBrokenSecretIsAnError(t *testing.T) {
	store := &MemoryStore{}
	require.NoError(t, store.Create(context.Background(), DefaultNamespace, SelfSignedSecretName,
		map[string][]byte{CACertKey: []byte("junk")}))
	_, err := New(context.Background(), store, Options{})
	require.ErrorContains(t, err, "secret istio-system/istio-ca-secret: key ca-key.pem is missing or empty")
}

func TestConcurrentStartersConvergeOnOneRoot(t *testing.T) {
	store := &MemoryStore{}
	const replicas = 6
	cas := make([]*CA, replicas)
	errs := make([]error, replicas)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range replicas {
		wg.Go(func() {
			<-start
			cas[i], errs[i] = New(context.Background(), store, Options{})
		})
	}
	close(start)
	wg.Wait()
	for i := range replicas {
		require.NoError(t, errs[i])
		require.Equal(t, cas[0].Root(), cas[i].Root(), "replica %d", i)
	}
	require.Equal(t, 1, store.Creates())
	stored, err := store.Get(context.Background(), DefaultNamespace, SelfSignedSecretName)
	require.NoError(t, err)
	require.Equal(t, stored[CACertKey], cas[0].Root())
}

// racingStore reports NotFound on the first Get, and lets another replica
// create the Secret before this one's Create, forcing the conflict path.
type racingStore struct {
	MemoryStore
	once   sync.Once
	winner func()
}

func (r *racingStore) Get(ctx context.Context, ns, name string) (map[string][]byte, error) {
	data, err := r.MemoryStore.Get(ctx, ns, name)
	if name == SelfSignedSecretName {
		r.once.Do(r.winner)
	}
	return data, err
}

func TestCreateConflictRereadsWinner(t *testing.T) {
	winnerRoot := testcerts.NewCA("winner", testcerts.Options{})
	r := &racingStore{}
	r.winner = func() {
		require.NoError(t, r.MemoryStore.Create(context.Background(), DefaultNamespace, SelfSignedSecretName,
			map[string][]byte{CACertKey: winnerRoot.CertPEM, CAKeyKey: winnerRoot.KeyPEM}))
	}
	c, err := New(context.Background(), r, Options{})
	require.NoError(t, err)
	require.Equal(t, winnerRoot.CertPEM, c.Root(), "the loser uses the winner's root")
	require.Equal(t, 1, r.Creates())
}

func TestReplicasShareRoot(t *testing.T) {
	store := &MemoryStore{}
	a := newSelfSignedCA(t, store)
	b := newSelfSignedCA(t, store)
	chainPEM, err := a.Sign(newCSR(t, []string{fooID.SPIFFEID()}, nil), fooID, time.Hour)
	require.NoError(t, err)
	chain := parseChain(t, chainPEM)
	verifyAgainstRoot(t, b.Root(), chain[0], nil, x509.ExtKeyUsageClientAuth)

	servingPEM, _, err := b.ServingCert(IstiodDNSNames("istio-system", ""), time.Hour)
	require.NoError(t, err)
	serving, err := parseCertsPEM(servingPEM)
	require.NoError(t, err)
	verifyAgainstRoot(t, a.Root(), serving[0], nil, x509.ExtKeyUsageServerAuth)
}

func keys(m map[string][]byte) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}
