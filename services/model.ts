/**
 * Services as nodewarden needs them: the slim projection of a Kubernetes
 * Service plus the facts about its endpoints that this node needs. The config
 * file's `services.items` validate into this form, and the Kubernetes source
 * produces the same form from Services and EndpointSlices.
 */

export type ServiceProtocol = 'TCP' | 'UDP' | 'SCTP';

export interface ServicePort {
  name?: string;
  port: number;
  protocol: ServiceProtocol;
  /** The NodePort, when the service has one. */
  nodePort?: number;
}

export interface Service {
  namespace: string;
  name: string;
  type: 'ClusterIP' | 'NodePort' | 'LoadBalancer';
  /** status.loadBalancer.ingress[].ip (IPv4 and IPv6). */
  loadBalancerIPs: string[];
  /** spec.externalIPs. */
  externalIPs: string[];
  ports: ServicePort[];
  externalTrafficPolicy: 'Cluster' | 'Local';
  /** spec.healthCheckNodePort (LoadBalancer with externalTrafficPolicy Local). */
  healthCheckNodePort?: number;
  /** Ready endpoints of this service that run on this node (EndpointSlices, nodeName = this node). */
  localReadyEndpoints: number;
  /** DSR for this service: the annotation `nodewarden.io/dsr: "true"` or the global flag. */
  dsr: boolean;
  /** Addresses of the nodes that run ready endpoints: DSR's backends. */
  backendNodes: string[];
}

export interface ServicesModel {
  services: Service[];
  /**
   * Input the source did not use as written, each naming the object, the field
   * path and the fallback in force (a DSR annotation that is neither "true" nor
   * "false"). Shown in status; the services themselves stay.
   */
  warnings?: string[];
}

export const serviceKey = (s: Pick<Service, 'namespace' | 'name'>): string => `${s.namespace}/${s.name}`;
