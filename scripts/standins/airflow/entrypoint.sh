#!/bin/sh
# As the official image's: bash and python run as they are, anything else is an `airflow` command.
case "${1:-}" in
  bash|sh|python|python3) exec "$@" ;;
  *) exec airflow "$@" ;;
esac
