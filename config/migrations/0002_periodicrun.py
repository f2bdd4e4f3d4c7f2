from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("config", "0001_initial")]

    operations = [
        migrations.CreateModel(
            name="PeriodicRun",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("job", models.CharField(max_length=100, unique=True)),
                ("last_started_at", models.DateTimeField(null=True)),
                ("last_success_at", models.DateTimeField(null=True)),
                ("successes", models.PositiveIntegerField(default=0)),
                ("last_result", models.JSONField(blank=True, default=dict)),
                ("last_error", models.TextField(blank=True)),
            ],
        ),
    ]
