#!/usr/bin/env bash
# Spark 4 needs Java 17 or newer. Use the one on PATH (or JAVA_HOME); if there is none and we are
# root on a Debian/Ubuntu machine, install the distribution's default JRE; otherwise say what to do.
set -euo pipefail

java_major() {
    # `java -version` prints e.g. 'openjdk version "17.0.15" 2025-04-15' (or "1.8.0_392" for Java 8).
    local bin=$1 version
    version=$("$bin" -version 2>&1 | awk -F'"' '/version/ {print $2; exit}')
    case "$version" in
        1.*) echo "${version#1.}" | cut -d. -f1 ;;
        *) echo "$version" | cut -d. -f1 ;;
    esac
}

find_java() {
    if [ -n "${JAVA_HOME:-}" ] && [ -x "$JAVA_HOME/bin/java" ]; then echo "$JAVA_HOME/bin/java"; return; fi
    command -v java 2>/dev/null || true
}

java_bin=$(find_java)
if [ -n "$java_bin" ]; then
    major=$(java_major "$java_bin")
    if [ "${major:-0}" -ge 17 ] 2>/dev/null; then
        exit 0
    fi
    echo "Found Java ${major:-unknown} at $java_bin; Spark 4 needs Java 17 or newer." >&2
fi

# KEDRO_AWS_INSTALL_JAVA=0 turns the automatic installation off (the message below is shown).
if [ "${KEDRO_AWS_INSTALL_JAVA:-1}" != 0 ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "Installing a Java runtime for Spark (apt-get install default-jre-headless)..." >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # default-jre-headless is Java 17 on Debian 12 / Ubuntu 22.04+, Java 21 on Debian 13: both run Spark 4.
    apt-get install -y -qq --no-install-recommends default-jre-headless >/dev/null
    java_bin=$(command -v java)
    major=$(java_major "$java_bin")
    if [ "${major:-0}" -ge 17 ] 2>/dev/null; then
        echo "Installed Java $major at $java_bin" >&2
        exit 0
    fi
    echo "error: installed Java $major, but Spark 4 needs 17 or newer; install openjdk-17-jre-headless or newer." >&2
    exit 1
fi

cat >&2 <<'MSG'
error: Spark 4 needs Java 17 or newer and none was found on PATH or in JAVA_HOME.
  Debian/Ubuntu:  sudo apt-get install openjdk-17-jre-headless
  macOS:          brew install openjdk@17
  Other systems:  install any JDK/JRE 17+ and put its bin/ on PATH (or set JAVA_HOME).
Then run the make target again.
MSG
exit 1
