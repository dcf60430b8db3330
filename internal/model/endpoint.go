package model

// Endpoint is one network endpoint of a service.
type Endpoint struct {
	Address string `json:"address,omitempty"`
	// Ports maps the service port name ("" for an unnamed single port) to the
	// endpoint's port number.
	Ports map[string]uint32 `json:"ports,omitempty"`
	// Labels are the workload's labels (filled from the Workload named by
	// WorkloadName when the slice itself carries none).
	Labels         map[string]string `json:"labels,omitempty"`
	ServiceAccount string            `json:"serviceAccount,omitempty"`
	Locality       string            `json:"locality,omitempty"`
	// WorkloadName is the pod the endpoint belongs to, if known (same namespace).
	WorkloadName string `json:"workloadName,omitempty"`
	// Ready, Serving and Terminating follow EndpointSlice conditions.
	Ready       bool `json:"ready"`
	Serving     bool `json:"serving"`
	Terminating bool `json:"terminating"`
}

// Routable reports whether traffic may be sent to the endpoint: it is ready
// and not terminating.
func (e *Endpoint) Routable() bool { return e.Ready && !e.Terminating }

// EndpointSet is one EndpointSlice: a part of one service's endpoints.
type EndpointSet struct {
	Name      string `json:"name,omitempty"`
	Namespace string `json:"namespace,omitempty"`
	// ServiceName is the name of the Service (in Namespace) the set belongs to.
	ServiceName string     `json:"serviceName,omitempty"`
	Endpoints   []Endpoint `json:"endpoints,omitempty"`
}
