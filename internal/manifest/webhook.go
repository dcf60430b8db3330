package manifest

import (
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// InjectPath is the injection webhook's path on meshd's webhook port.
const InjectPath = "/inject"

// mutatingWebhook is the MutatingWebhookConfiguration istiod's chart
// (istio-discovery/templates/mutatingwebhook.yaml) generates: for a
// revision, a namespace labelled istio.io/rev=<rev>, or a pod labelled so
// in an unlabelled namespace; for the default revision also the
// istio-injection=enabled namespaces and sidecar.istio.io/inject=true pods.
// Its caBundle is empty: meshd patches in its root at run time.
func (o Options) mutatingWebhook() *admissionregistrationv1.MutatingWebhookConfiguration {
	m := o.clusterMeta(o.WebhookConfigName())
	m.Labels[labelApp] = "sidecar-injector"
	rev := o.RevisionLabel()
	notDisabled := req(labelInject, metav1.LabelSelectorOpNotIn, "false")
	hooks := []admissionregistrationv1.MutatingWebhook{
		o.webhook("rev.namespace.",
			selector(req(labelRev, metav1.LabelSelectorOpIn, rev), req("istio-injection", metav1.LabelSelectorOpDoesNotExist)),
			selector(notDisabled)),
		o.webhook("rev.object.",
			selector(req(labelRev, metav1.LabelSelectorOpDoesNotExist), req("istio-injection", metav1.LabelSelectorOpDoesNotExist)),
			selector(notDisabled, req(labelRev, metav1.LabelSelectorOpIn, rev))),
	}
	if o.Revision == "" {
		hooks = append(hooks,
			o.webhook("namespace.",
				selector(req("istio-injection", metav1.LabelSelectorOpIn, "enabled")),
				selector(notDisabled)),
			o.webhook("object.",
				selector(req("istio-injection", metav1.LabelSelectorOpDoesNotExist), req(labelRev, metav1.LabelSelectorOpDoesNotExist)),
				selector(req(labelInject, metav1.LabelSelectorOpIn, "true"), req(labelRev, metav1.LabelSelectorOpDoesNotExist))),
		)
	}
	return &admissionregistrationv1.MutatingWebhookConfiguration{
		TypeMeta:   typeMeta("admissionregistration.k8s.io/v1", "MutatingWebhookConfiguration"),
		ObjectMeta: m, Webhooks: hooks}
}

// webhook is istiod's "core" webhook with name prefix prefix.
func (o Options) webhook(prefix string, namespaces, objects *metav1.LabelSelector) admissionregistrationv1.MutatingWebhook {
	path, port := InjectPath, int32(443)
	none := admissionregistrationv1.SideEffectClassNone
	fail := admissionregistrationv1.FailurePolicyType(o.WebhookFailurePolicy)
	never := admissionregistrationv1.NeverReinvocationPolicy
	return admissionregistrationv1.MutatingWebhook{
		Name: prefix + "sidecar-injector.istio.io",
		ClientConfig: admissionregistrationv1.WebhookClientConfig{Service: &admissionregistrationv1.ServiceReference{
			Name: o.ServiceName(), Namespace: o.Namespace, Path: &path, Port: &port}},
		Rules: []admissionregistrationv1.RuleWithOperations{{
			Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create},
			Rule: admissionregistrationv1.Rule{APIGroups: []string{""}, APIVersions: []string{"v1"},
				Resources: []string{"pods"}}}},
		SideEffects: &none, FailurePolicy: &fail, ReinvocationPolicy: &never,
		AdmissionReviewVersions: []string{"v1"},
		NamespaceSelector:       namespaces, ObjectSelector: objects,
	}
}

func selector(reqs ...metav1.LabelSelectorRequirement) *metav1.LabelSelector {
	return &metav1.LabelSelector{MatchExpressions: reqs}
}

func req(key string, op metav1.LabelSelectorOperator, values ...string) metav1.LabelSelectorRequirement {
	return metav1.LabelSelectorRequirement{Key: key, Operator: op, Values: values}
}
