"""Answer-first question writing (the course's choice); feedback on open answers (tutor.questions.open_feedback) and the set's switch that lets it count toward the grade."""

import django.core.validators
import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
        ('tutor', '0011_merge_gap_fill_and_shuffle'),
    ]

    operations = [
        migrations.AddField(
            model_name='tutorconfig',
            name='question_method',
            field=models.CharField(choices=[('answer_first', 'Answer first: the tool picks the answer in a sentence, the model phrases the question'), ('whole_passage', 'Whole passage: the model writes questions and answers from the passages')], default='answer_first', help_text='Answer first: the answer key is always a phrase of its source sentence, word for word, and the model only phrases the question and the wrong options (one question per request, a short prompt). The other kinds are always written from the whole passage.', max_length=16, verbose_name='how multiple-choice and short-answer questions are written'),
        ),
        migrations.AddField(
            model_name='questionset',
            name='open_answers_graded',
            field=models.BooleanField(default=False, help_text='Off: answers to open questions get feedback (the model\'s, or yours) but no points. On: each counts with the share of its rubric that the feedback finds (yours where you gave one).', verbose_name='open answers count toward the grade'),
        ),
        migrations.CreateModel(
            name='OpenAnswerFeedback',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('state', models.CharField(choices=[('pending', 'Waiting'), ('running', 'Being written'), ('done', 'Written'), ('failed', 'Failed')], default='pending', max_length=16)),
                ('error', models.CharField(blank=True, max_length=32)),
                ('ai_text', models.TextField(blank=True, help_text="the model's feedback in its own words")),
                ('present', models.JSONField(blank=True, default=list, help_text="rubric points the answer makes (the model's view)")),
                ('missing', models.JSONField(blank=True, default=list, help_text="rubric points the answer misses (the model's view)")),
                ('ai_credit', models.FloatField(blank=True, help_text='share of the rubric points present, 0..1', null=True)),
                ('lecturer_text', models.TextField(blank=True, verbose_name='your feedback')),
                ('lecturer_credit', models.FloatField(blank=True, null=True, validators=[django.core.validators.MinValueValidator(0.0), django.core.validators.MaxValueValidator(1.0)], verbose_name='your credit (0 to 1)')),
                ('overridden_at', models.DateTimeField(blank=True, null=True)),
                ('model_seconds', models.FloatField(default=0.0)),
                ('created_at', models.DateTimeField(auto_now_add=True)),
                ('changed_at', models.DateTimeField(auto_now=True)),
                ('attempt', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='open_feedback', to='tutor.attempt')),
                ('overridden_by', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL)),
                ('question', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='open_feedback', to='tutor.question')),
            ],
            options={
                'ordering': ['attempt', 'question__position'],
                'constraints': [models.UniqueConstraint(fields=('attempt', 'question'), name='one_feedback_per_answer')],
            },
        ),
    ]
