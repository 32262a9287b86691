# The Airflow image of the compose deployment: the official image, our pinned requirements, this package.
FROM apache/airflow:3.3.2-python3.11

COPY --chown=airflow:0 requirements.txt /opt/usergroup/requirements.txt
RUN pip install --no-cache-dir -r /opt/usergroup/requirements.txt

COPY --chown=airflow:0 pyproject.toml /opt/usergroup/pyproject.toml
COPY --chown=airflow:0 plugins /opt/usergroup/plugins
RUN pip install --no-cache-dir --no-deps /opt/usergroup
