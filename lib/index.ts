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
