package kube

import (
	"context"
	"log/slog"

	istioscheme "istio.io/client-go/pkg/clientset/versioned/scheme"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/tools/record"

	"github.com/meshd/meshd/internal/model"
)

// eventReporter records Warning Events on objects meshd cannot use.
type eventReporter struct {
	kube        kubernetes.Interface
	log         *slog.Logger
	broadcaster record.EventBroadcaster
	recorder    record.EventRecorder
}

func newEventReporter(kc kubernetes.Interface, log *slog.Logger) *eventReporter {
	scheme := runtime.NewScheme()
	_ = clientgoscheme.AddToScheme(scheme)
	_ = istioscheme.AddToScheme(scheme)
	b := record.NewBroadcaster()
	return &eventReporter{kube: kc, log: log, broadcaster: b,
		recorder: b.NewRecorder(scheme, corev1.EventSource{Component: "meshd"})}
}

func (e *eventReporter) start(ctx context.Context) {
	e.broadcaster.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: e.kube.CoreV1().Events("")})
}

func (e *eventReporter) stop() { e.broadcaster.Shutdown() }

// report logs a conversion error and records a Warning Event on the object,
// once per distinct message per object.
func (p *Provider) report(key string, obj any, oe model.ObjectError) {
	if !p.reportedOnce(key, oe.Message+"|"+oe.Field) {
		return
	}
	p.log.Warn("config rejected", "kind", oe.Kind, "namespace", oe.Namespace, "name", oe.Name,
		"field", oe.Field, "error", oe.Message)
	if ro, ok := obj.(runtime.Object); ok {
		msg := oe.Message
		if oe.Field != "" {
			msg = oe.Field + ": " + msg
		}
		p.events.recorder.Event(ro, corev1.EventTypeWarning, "MeshdRejected", msg)
	}
}

// reportedOnce records msg for key and reports whether it is new.
func (p *Provider) reportedOnce(key, msg string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.reported[key] == msg {
		return false
	}
	p.reported[key] = msg
	return true
}

// forget clears what was reported for key, logging that the error cleared.
func (p *Provider) forget(key string) {
	p.mu.Lock()
	_, had := p.reported[key]
	delete(p.reported, key)
	p.mu.Unlock()
	if had {
		p.log.Info("config error cleared", "object", key)
	}
}
