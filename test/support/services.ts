/** A Service of the services model for tests: web on TCP 80 and UDP 53, with DSR; override what a test needs. */
import type { Service } from '../../services/model.js';

export function sampleService(over: Partial<Service> = {}): Service {
  return {
    namespace: 'default',
    name: 'web',
    type: 'LoadBalancer',
    loadBalancerIPs: ['192.0.2.10', '2001:db8::10'],
    externalIPs: [],
    ports: [
      { port: 80, protocol: 'TCP' },
      { port: 53, protocol: 'UDP' },
    ],
    externalTrafficPolicy: 'Cluster',
    localReadyEndpoints: 0,
    dsr: true,
    backendNodes: ['10.0.0.2', '10.0.0.3', 'fd00::2'],
    ...over,
  };
}
