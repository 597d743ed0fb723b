#!/bin/sh
# package-manager.sh vcpkg|conan <kvstore source dir>
# Installs kvstore through the package manager's recipe in this repository
# and builds its consumer; exits 77 (ctest: skipped) if the tool is absent.
set -eu
tool=$1
source_dir=$2
if ! command -v "$tool" >/dev/null 2>&1; then
  echo "$tool is not installed: skipped (its recipe's version is still checked by PackageRecipesNameTheCurrentVersion)"
  exit 77
fi
case $tool in
  vcpkg) vcpkg install kvstore --overlay-ports="$source_dir/ports" ;;
  conan) conan create "$source_dir" --build=missing ;;
esac
