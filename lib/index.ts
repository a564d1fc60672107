export { NvmfError, type NvmfErrorCode } from './errors';
export {
  Target,
  type TargetOptions,
  type TargetState,
  type PollMode,
  type ReactorInfo,
  type BdevOptions,
  type BdevInfo,
  type SubsystemOptions,
  type PollGroupStats,
  type ListenAddress,
} from './target';
export { Subsystem, type NamespaceOptions, type HostOptions, type NamespaceInfo } from './subsystem';
export {
  connect,
  discover,
  DISCOVERY_NQN,
  HostController,
  type HostConnectOptions,
  type ControllerInfo,
  type ControllerIdentify,
  type NamespaceIdentify,
  type DiscoveryEntry,
  type DiscoverOptions,
  type LogPageOptions,
  type IoOptions,
  type RawOptions,
  type RawCompletion,
} from './host';
