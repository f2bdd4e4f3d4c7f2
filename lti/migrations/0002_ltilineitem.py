# The AGS side of grades is lti's: a line item per (context, resourceId) of the tool (as django-lti's LtiLineItem).

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('lti', '0001_initial'),
    ]

    operations = [
        migrations.CreateModel(
            name='LtiLineItem',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('resource_id', models.CharField(max_length=255)),
                ('url', models.URLField(max_length=500)),
                ('updated_at', models.DateTimeField(auto_now=True)),
                ('context', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='line_items', to='lti.lticontext')),
            ],
            options={
                'verbose_name': 'LTI line item',
                'verbose_name_plural': 'LTI line items',
                'constraints': [models.UniqueConstraint(fields=('context', 'resource_id'), name='one_line_item_per_resource')],
            },
        ),
    ]
