#!/usr/bin/env bash
# npm run test:pack — proves the shipped package works with no toolchain:
# builds the prebuild, packs the tarball, installs it into a new empty app
# with no C/C++ compiler on PATH, creates and destroys a target there and
# checks ERR_DESTROYED; checks that the prebuild links only libc-level
# libraries (liburing static, rdma-core dlopen'ed, OpenSSL from Node).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
WORK=$(mktemp -d /tmp/nvmf-pack.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
fail() { echo "test-pack: FAIL: $*" >&2; exit 1; }

npm run build:ts >/dev/null
rm -rf prebuilds
npx prebuildify --napi --strip >/dev/null
PREBUILD=$(find prebuilds/linux-x64 -name '*.node' | head -1)
[[ -n $PREBUILD ]] || fail "no prebuild written under prebuilds/linux-x64"
echo "test-pack: prebuild $PREBUILD ($(stat -c %s "$PREBUILD") bytes)"

echo "test-pack: ldd $PREBUILD"
ldd "$PREBUILD" | sed 's/^/  /'
bad=$(ldd "$PREBUILD" | awk '{print $1}' | grep -vE '^(linux-vdso\.so\.1|libc\.so\.6|libm\.so\.6|libstdc\+\+\.so\.6|libgcc_s\.so\.1|libdl\.so\.2|libpthread\.so\.0|/lib64/ld-linux-x86-64\.so\.2)$' || true)
[[ -z $bad ]] || fail "prebuild links unexpected libraries: $bad"

TGZ=$(npm pack --pack-destination "$WORK" 2>/dev/null | tail -1)
[[ -f $WORK/$TGZ ]] || fail "npm pack wrote no tarball"
LIST=$(tar -tzf "$WORK/$TGZ")
grep -q 'package/prebuilds/linux-x64/.*\.node$' <<<"$LIST" || fail "tarball lacks the prebuild"
echo "test-pack: packed $TGZ"

# A PATH with every tool of /usr/bin and /bin except compilers and build tools.
NOCC=$WORK/bin
mkdir -p "$NOCC"
for d in /usr/local/bin /usr/bin /bin; do
  for f in "$d"/*; do
    n=$(basename "$f")
    case $n in
      cc|c++|gcc*|g++*|cpp*|clang*|*-gcc*|*-g++*|*-cpp*|ld|ld.*|*-ld|*-ld.*|as|*-as|make|cmake|ninja|node-gyp) continue ;;
    esac
    [[ -e $NOCC/$n ]] || ln -s "$f" "$NOCC/$n"
  done
done
PATH=$NOCC command -v cc gcc g++ clang make >/dev/null 2>&1 && fail "compiler still on PATH"

APP=$WORK/app
mkdir -p "$APP"
cd "$APP"
PATH=$NOCC npm init -y >/dev/null
PATH=$NOCC npm_config_build_from_source=false npm install --no-audit --no-fund "$WORK/$TGZ" >/dev/null
[[ ! -d node_modules/nvmf-target/build ]] || fail "the install built from source"
cat > app.js <<'JS'
const { Target } = require('nvmf-target');
(async () => {
  const t = await Target.create({ reactors: 2 });
  if (t.state !== 'running') throw new Error(`state ${t.state}`);
  await t.destroy();
  try {
    t.reactors();
    throw new Error('no error after destroy');
  } catch (e) {
    if (e.code !== 'ERR_DESTROYED') throw e;
  }
  console.log('app: created, destroyed, ERR_DESTROYED afterwards');
})().catch((e) => { console.error(e); process.exit(1); });
JS
PATH=$NOCC node app.js
echo "test-pack: 1 passed, 0 failed"
