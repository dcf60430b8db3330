package inject

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"time"

	admregv1 "k8s.io/api/admissionregistration/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
)

// WebhookConfigs is the Kubernetes access CABundlePatcher needs: get,
// watch and patch MutatingWebhookConfigurations (client-go's typed
// MutatingWebhookConfigurationInterface has it).
type WebhookConfigs interface {
	Get(ctx context.Context, name string, opts metav1.GetOptions) (*admregv1.MutatingWebhookConfiguration, error)
	Watch(ctx context.Context, opts metav1.ListOptions) (watch.Interface, error)
	Patch(ctx context.Context, name string, pt types.PatchType, data []byte, opts metav1.PatchOptions,
		subresources ...string) (*admregv1.MutatingWebhookConfiguration, error)
}

// CABundleOptions configure a CABundlePatcher.
type CABundleOptions struct {
	// Name is the MutatingWebhookConfiguration's name.
	Name string
	// Root is the mesh root certificate (PEM) every webhook must trust.
	Root []byte
	// RootFile, when set, is read on every sync instead of Root: the CA
	// bundle of a custom serving certificate (PILOT_CERT_PROVIDER=custom:
	// ca.crt beside tls.crt, as istiod reads it), which may be rotated.
	RootFile string
	// Resync is how often the configuration is checked without an event
	// (default 5 minutes); Backoff the wait after a failure (default 1s,
	// doubling to 1 minute).
	Resync, Backoff time.Duration
	Logger          *slog.Logger
}

// CABundlePatcher keeps clientConfig.caBundle of every webhook of one
// MutatingWebhookConfiguration set to the mesh root, as istiod's webhook
// patcher: at start, whenever the configuration is created or edited, and
// periodically. A configuration that does not exist yet is waited for.
type CABundlePatcher struct {
	client WebhookConfigs
	o      CABundleOptions
}

// NewCABundlePatcher returns a patcher; nothing happens until Run.
func NewCABundlePatcher(client WebhookConfigs, o CABundleOptions) *CABundlePatcher {
	if o.Resync <= 0 {
		o.Resync = 5 * time.Minute
	}
	if o.Backoff <= 0 {
		o.Backoff = time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return &CABundlePatcher{client: client, o: o}
}

// Run patches and watches until ctx is done; it returns nil then.
func (p *CABundlePatcher) Run(ctx context.Context) error {
	backoff := p.o.Backoff
	for ctx.Err() == nil {
		rv, err := p.Sync(ctx)
		if err == nil {
			err = p.waitForChange(ctx, rv)
		}
		if err == nil {
			backoff = p.o.Backoff
			continue
		}
		if ctx.Err() != nil {
			break
		}
		p.o.Logger.Warn("keeping the injection webhook's caBundle failed; retrying", "webhookConfig", p.o.Name,
			"error", err, "retryIn", backoff)
		select {
		case <-ctx.Done():
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, time.Minute)
	}
	return nil
}

// Sync sets every webhook's caBundle to the root if one differs, and
// returns the configuration's resourceVersion ("" when it does not exist).
func (p *CABundlePatcher) Sync(ctx context.Context) (string, error) {
	cfg, err := p.client.Get(ctx, p.o.Name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		p.o.Logger.Info("injection webhook configuration not found; waiting for it", "webhookConfig", p.o.Name)
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("reading MutatingWebhookConfiguration %s: %w", p.o.Name, err)
	}
	root := p.o.Root
	if p.o.RootFile != "" {
		if root, err = os.ReadFile(p.o.RootFile); err != nil {
			return "", fmt.Errorf("reading the webhook's CA bundle: %w", err)
		}
	}
	patch, err := caBundlePatch(cfg, root)
	if err != nil || patch == nil {
		return cfg.ResourceVersion, err
	}
	out, err := p.client.Patch(ctx, p.o.Name, types.JSONPatchType, patch, metav1.PatchOptions{FieldManager: "meshd"})
	if err != nil {
		return "", fmt.Errorf("patching the caBundle of MutatingWebhookConfiguration %s: %w", p.o.Name, err)
	}
	p.o.Logger.Info("injection webhook caBundle set to the mesh root", "webhookConfig", p.o.Name, "webhooks", len(cfg.Webhooks))
	return out.ResourceVersion, nil
}

// caBundlePatch is the JSONPatch setting every webhook's caBundle to
// root, guarded by a test of the resourceVersion (so the indexes are
// those of the version read); nil when nothing needs changing.
func caBundlePatch(cfg *admregv1.MutatingWebhookConfiguration, root []byte) ([]byte, error) {
	ops := []map[string]any{{"op": "test", "path": "/metadata/resourceVersion", "value": cfg.ResourceVersion}}
	for i, wh := range cfg.Webhooks {
		if !bytes.Equal(wh.ClientConfig.CABundle, root) {
			ops = append(ops, map[string]any{"op": "add", "path": "/webhooks/" + strconv.Itoa(i) + "/clientConfig/caBundle",
				"value": base64.StdEncoding.EncodeToString(root)})
		}
	}
	if len(ops) == 1 {
		return nil, nil
	}
	return json.Marshal(ops)
}

// waitForChange watches the configuration from resourceVersion rv until
// it changes (or appears, or goes), the watch ends, or Resync passes.
func (p *CABundlePatcher) waitForChange(ctx context.Context, rv string) error {
	w, err := p.client.Watch(ctx, metav1.ListOptions{
		FieldSelector:   fields.OneTermEqualSelector("metadata.name", p.o.Name).String(),
		ResourceVersion: rv,
	})
	if err != nil {
		return fmt.Errorf("watching MutatingWebhookConfiguration %s: %w", p.o.Name, err)
	}
	defer w.Stop()
	timer := time.NewTimer(p.o.Resync)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-timer.C:
			return nil
		case ev, ok := <-w.ResultChan():
			if !ok {
				return nil // the server ended the watch: read again
			}
			switch ev.Type {
			case watch.Added, watch.Modified, watch.Deleted:
				return nil
			case watch.Error:
				return fmt.Errorf("watching MutatingWebhookConfiguration %s: %v", p.o.Name, apierrors.FromObject(ev.Object))
			}
		}
	}
}
