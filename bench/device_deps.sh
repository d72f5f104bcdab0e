#!/usr/bin/env bash
# Downloads, here, the Debian packages bistro builds against (all but libtorch, which the GPU
# machine's PyTorch brings) into .devdeps/, for bench/device_check.sh to unpack with dpkg -x on a
# bare GPU machine that has CUDA, CMake and PyTorch but none of them. Carry .devdeps to it.
#   bench/device_deps.sh        -> .devdeps/*.deb (about 20 MB)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
dest=$root/.devdeps
# Headers and link-time libraries of CMakeLists.txt's find_package/pkg_check_modules, and the
# runtime libraries they need that a stock Ubuntu/Debian image may lack.
PACKAGES=(
  nlohmann-json3-dev libcli11-dev libfmt-dev libfmt9 libgtest-dev libgmock-dev
  zlib1g-dev libzstd-dev libcurl4-openssl-dev libcurl4 libsodium-dev libsodium23 libssl-dev
  libsqlite3-dev libsqlite3-0 libxxhash-dev libxxhash0 libcpp-httplib-dev libcpp-httplib0.11
  libsentencepiece-dev libsentencepiece0 libprotobuf-lite32 libbrotli1 libbrotli-dev
  libnghttp2-14 librtmp1 libssh2-1 libpsl5 libldap-2.5-0 libsasl2-2 libgssapi-krb5-2
  libkrb5-3 libk5crypto3 libkrb5support0 libkeyutils1 libgnutls30 libhogweed6 libnettle8
  libidn2-0 libunistring2 libtasn1-6 libp11-kit0 libffi8 libgmp10 libssl3
  pkgconf pkgconf-bin libpkgconf3 pkg-config ninja-build
)
mkdir -p "$dest"
cd "$dest"
rm -f ./*.deb
apt-get download "${PACKAGES[@]}" >/dev/null
du -sh "$dest"
